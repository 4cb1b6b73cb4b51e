//! JUnit XML: pytest's report (xunit1 family, which names each case's file)
//! turned back into per-test results with pytest node ids, and a report
//! written from results, for a run whose pytest wrote none (it died).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use shared::{CaseOutcome, CaseResult};

/// Messages longer than this are cut; the full text is in the log.
const MAX_MESSAGE_CHARS: usize = 4000;
/// How much of a case's `system-out` is searched for attachment lines.
const MAX_SYSTEM_OUT: usize = 1024 * 1024;

#[derive(Default)]
struct OpenCase {
    classname: String,
    name: String,
    file: Option<String>,
    seconds: f64,
    outcome: Option<CaseOutcome>,
    message: Option<String>,
    /// Text of the failure/error element, used when it has no message.
    detail: String,
    in_detail: bool,
    /// Text of its `system-out`, for `[[ATTACHMENT|path]]` lines.
    system_out: String,
    in_system_out: bool,
}

impl OpenCase {
    fn start(element: &BytesStart) -> OpenCase {
        let mut case = OpenCase::default();
        for attr in element.attributes().flatten() {
            let value = attr
                .unescape_value()
                .map(|v| v.into_owned())
                .unwrap_or_default();
            match attr.key.as_ref() {
                b"classname" => case.classname = value,
                b"name" => case.name = value,
                b"file" => case.file = Some(value),
                b"time" => case.seconds = value.parse().unwrap_or(0.0),
                _ => {}
            }
        }
        case
    }

    /// A failure wins over an error (teardown after a failed call), both
    /// over a skip.
    fn mark(&mut self, outcome: CaseOutcome, element: &BytesStart) {
        let rank = |o: Option<CaseOutcome>| match o {
            Some(CaseOutcome::Failed) => 3,
            Some(CaseOutcome::Error) => 2,
            Some(CaseOutcome::Skipped) => 1,
            _ => 0,
        };
        if rank(Some(outcome)) <= rank(self.outcome) {
            return;
        }
        self.outcome = Some(outcome);
        self.message = element
            .try_get_attribute("message")
            .ok()
            .flatten()
            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
            .filter(|m| !m.trim().is_empty());
        self.detail.clear();
        self.in_detail = true;
    }

    /// `None` for the nameless case pytest writes when it is interrupted.
    fn finish(self) -> Option<CaseResult> {
        if self.name.is_empty() && self.classname.is_empty() {
            return None;
        }
        let outcome = self.outcome.unwrap_or(CaseOutcome::Passed);
        let message = match outcome {
            CaseOutcome::Passed => None,
            _ => self
                .message
                .or_else(|| {
                    self.detail
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .map(str::to_string)
                })
                .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect()),
        };
        Some(CaseResult {
            nodeid: nodeid(&self.classname, &self.name, self.file.as_deref()),
            outcome,
            duration_ms: (self.seconds * 1000.0).round().max(0.0) as i64,
            message,
            attachments: shared::artifact::attachment_references(&self.system_out),
        })
    }
}

/// Rebuilds `dir/test_x.py::Class::test_a[p]` from JUnit's dotted
/// classname, using the file attribute where pytest gives it.
fn nodeid(classname: &str, name: &str, file: Option<&str>) -> String {
    match file {
        Some(file) => {
            let module = file.trim_end_matches(".py").replace('/', ".");
            if classname.is_empty() {
                // A collection error: the case is the file itself.
                return file.to_string();
            }
            let classes = classname
                .strip_prefix(&module)
                .map(|rest| rest.trim_start_matches('.'))
                .unwrap_or("");
            if classes.is_empty() {
                format!("{file}::{name}")
            } else {
                format!("{file}::{}::{name}", classes.replace('.', "::"))
            }
        }
        None if classname.is_empty() => format!("{}.py", name.replace('.', "/")),
        None => format!("{}.py::{name}", classname.replace('.', "/")),
    }
}

pub fn parse(xml: &str) -> Result<Vec<CaseResult>, String> {
    let mut reader = Reader::from_str(xml);
    let mut cases = Vec::new();
    let mut open: Option<OpenCase> = None;
    loop {
        match reader.read_event() {
            Err(e) => return Err(format!("unreadable JUnit report: {e}")),
            Ok(Event::Eof) => break,
            Ok(Event::Start(element)) | Ok(Event::Empty(element))
                if element.name().as_ref() == b"testcase" =>
            {
                if let Some(case) = open.take() {
                    cases.extend(case.finish());
                }
                open = Some(OpenCase::start(&element));
            }
            Ok(Event::Start(element)) | Ok(Event::Empty(element)) => {
                if let Some(case) = open.as_mut() {
                    match element.name().as_ref() {
                        b"failure" => case.mark(CaseOutcome::Failed, &element),
                        b"error" => case.mark(CaseOutcome::Error, &element),
                        b"skipped" => case.mark(CaseOutcome::Skipped, &element),
                        b"system-out" => case.in_system_out = true,
                        _ => {}
                    }
                }
            }
            Ok(Event::Text(text)) => {
                if let Some(case) = open.as_mut() {
                    if case.in_detail && case.detail.len() < 64 * 1024 {
                        case.detail.push_str(&text.unescape().unwrap_or_default());
                    } else if case.in_system_out && case.system_out.len() < MAX_SYSTEM_OUT {
                        case.system_out
                            .push_str(&text.unescape().unwrap_or_default());
                    }
                }
            }
            Ok(Event::CData(text)) => {
                if let Some(case) = open.as_mut() {
                    if case.in_detail {
                        case.detail.push_str(&String::from_utf8_lossy(&text));
                    } else if case.in_system_out && case.system_out.len() < MAX_SYSTEM_OUT {
                        case.system_out.push_str(&String::from_utf8_lossy(&text));
                    }
                }
            }
            Ok(Event::End(element)) => match element.name().as_ref() {
                b"testcase" => {
                    if let Some(case) = open.take() {
                        cases.extend(case.finish());
                    }
                }
                b"failure" | b"error" | b"skipped" => {
                    if let Some(case) = open.as_mut() {
                        case.in_detail = false;
                    }
                }
                b"system-out" => {
                    if let Some(case) = open.as_mut() {
                        case.in_system_out = false;
                    }
                }
                _ => {}
            },
            Ok(_) => {}
        }
    }
    if let Some(case) = open.take() {
        cases.extend(case.finish());
    }
    Ok(cases)
}

/// A JUnit XML report of `cases`, as CI systems read them: one suite, one
/// test case per node id (the file and the rest as class and name).
pub fn export(suite: &str, cases: &[CaseResult]) -> String {
    use quick_xml::escape::escape;
    let count = |outcome: CaseOutcome| cases.iter().filter(|c| c.outcome == outcome).count();
    let seconds: f64 = cases.iter().map(|c| c.duration_ms as f64 / 1000.0).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>");
    xml.push_str(&format!(
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{seconds:.3}\">\n",
        escape(suite),
        cases.len(),
        count(CaseOutcome::Failed),
        count(CaseOutcome::Error),
        count(CaseOutcome::Skipped) + count(CaseOutcome::Xfailed),
    ));
    for case in cases {
        let (file, name) = case.nodeid.split_once("::").unwrap_or((&case.nodeid, ""));
        let classname = file.trim_end_matches(".py").replace('/', ".");
        xml.push_str(&format!(
            "<testcase classname=\"{}\" name=\"{}\" file=\"{}\" time=\"{:.3}\"",
            escape(classname.as_str()),
            escape(name),
            escape(file),
            case.duration_ms as f64 / 1000.0
        ));
        let message = escape(case.message.as_deref().unwrap_or(""));
        let element = match case.outcome {
            CaseOutcome::Passed | CaseOutcome::Xpassed => None,
            CaseOutcome::Failed => Some("failure"),
            CaseOutcome::Error => Some("error"),
            CaseOutcome::Skipped | CaseOutcome::Xfailed => Some("skipped"),
        };
        // Attachments as CI servers' JUnit readers take them.
        let system_out: String = case
            .attachments
            .iter()
            .map(|path| format!("[[ATTACHMENT|{}]]\n", escape(path.as_str())))
            .collect();
        match (element, system_out.is_empty()) {
            (None, true) => xml.push_str(" />\n"),
            (element, _) => {
                xml.push('>');
                if let Some(element) = element {
                    xml.push_str(&format!(
                        "<{element} message=\"{message}\">{message}</{element}>"
                    ));
                }
                if !system_out.is_empty() {
                    xml.push_str(&format!("<system-out>{system_out}</system-out>"));
                }
                xml.push_str("</testcase>\n");
            }
        }
    }
    xml.push_str("</testsuite></testsuites>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="2" tests="6" time="0.1">
<testcase classname="smoke.test_x" name="test_ok" file="smoke/test_x.py" line="1" time="0.0012" />
<testcase classname="smoke.test_x.TestK" name="test_b[1-a]" file="smoke/test_x.py" line="5" time="0.5"><failure message="assert 1 == 2">def test_b():
&gt;   assert 1 == 2
E   assert 1 == 2</failure></testcase>
<testcase classname="smoke.test_x" name="test_skip" file="smoke/test_x.py" line="9" time="0"><skipped type="pytest.skip" message="not today">smoke/test_x.py:9: not today</skipped></testcase>
<testcase classname="smoke.test_x" name="test_xf" file="smoke/test_x.py" line="12" time="0"><skipped type="pytest.xfail" message="known bug" /></testcase>
<testcase classname="smoke.test_x" name="test_setup" file="smoke/test_x.py" line="15" time="0.01"><error message="failed on setup with &quot;RuntimeError: no db&quot;">trace</error></testcase>
<testcase classname="" name="smoke.test_broken" time="0.000"><error message="collection failure">SyntaxError</error></testcase>
</testsuite></testsuites>"#;

    #[test]
    fn cases_carry_node_ids_outcomes_and_messages() {
        let cases = parse(REPORT).unwrap();
        let summary: Vec<(&str, CaseOutcome)> = cases
            .iter()
            .map(|c| (c.nodeid.as_str(), c.outcome))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("smoke/test_x.py::test_ok", CaseOutcome::Passed),
                ("smoke/test_x.py::TestK::test_b[1-a]", CaseOutcome::Failed),
                ("smoke/test_x.py::test_skip", CaseOutcome::Skipped),
                ("smoke/test_x.py::test_xf", CaseOutcome::Skipped),
                ("smoke/test_x.py::test_setup", CaseOutcome::Error),
                ("smoke/test_broken.py", CaseOutcome::Error),
            ]
        );
        assert_eq!(cases[0].duration_ms, 1);
        assert_eq!(cases[0].message, None);
        assert_eq!(cases[1].duration_ms, 500);
        assert_eq!(cases[1].message.as_deref(), Some("assert 1 == 2"));
        assert_eq!(
            cases[4].message.as_deref(),
            Some("failed on setup with \"RuntimeError: no db\"")
        );
    }

    #[test]
    fn an_interrupted_session_leaves_no_nameless_case() {
        let xml = r#"<testsuites><testsuite name="pytest" tests="1"><testcase classname="test_long" name="test_a" file="test_long.py" line="1" time="0.001" /><testcase time="0.000" /></testsuite></testsuites>"#;
        let cases = parse(xml).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].nodeid, "test_long.py::test_a");
    }

    #[test]
    fn an_exported_report_reads_back_as_the_same_cases() {
        let cases = parse(REPORT).unwrap();
        let cases: Vec<CaseResult> = cases
            .into_iter()
            .filter(|c| c.nodeid.contains("::"))
            .collect();
        let again = parse(&export("pytest", &cases)).unwrap();
        let outcomes = |list: &[CaseResult]| -> Vec<(String, CaseOutcome)> {
            list.iter().map(|c| (c.nodeid.clone(), c.outcome)).collect()
        };
        assert_eq!(outcomes(&again), outcomes(&cases));
        assert_eq!(again[1].message, cases[1].message);
    }

    #[test]
    fn attachment_lines_in_system_out_attach_files_to_their_case() {
        let xml = r#"<testsuites><testsuite name="pytest" tests="2">
<testcase classname="test_a" name="test_shot" file="test_a.py" time="0.1"><system-out>opening
[[ATTACHMENT|shots/login.png]]
done</system-out></testcase>
<testcase classname="test_a" name="test_plain" file="test_a.py" time="0.1"><failure message="no">x [[ATTACHMENT|not/this.png]]</failure></testcase>
</testsuite></testsuites>"#;
        let cases = parse(xml).unwrap();
        assert_eq!(cases[0].attachments, ["shots/login.png"]);
        assert!(cases[1].attachments.is_empty(), "only system-out counts");
        let again = parse(&export("pytest", &cases)).unwrap();
        assert_eq!(again[0].attachments, ["shots/login.png"]);
        assert_eq!(again[1].outcome, CaseOutcome::Failed);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse("<testsuite><testcase></testsuite>").is_err());
        assert_eq!(parse("").map(|c| c.len()), Ok(0));
    }
}
