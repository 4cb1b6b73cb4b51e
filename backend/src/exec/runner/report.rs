//! What pytest itself says about a run, through the reporter plugin
//! (`reporter.py`): the events, and the results they add up to (per-test
//! cases as each test finishes, live counts, and at the end the counts of
//! pytest's own closing line).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use shared::{CaseOutcome, CaseResult, RunSummary};

/// Failure and skip messages longer than this are cut; the log has them.
const MAX_MESSAGE_CHARS: usize = 4000;

/// One line the plugin sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ReporterEvent {
    /// Collection is over: this many tests will run.
    Collected { count: i32 },
    /// A file or module could not be collected.
    CollectError { nodeid: String, message: String },
    /// A node id the run names matched no collected test.
    NotFound { nodeid: String },
    /// A test begins (its setup is next).
    TestStart { nodeid: String },
    /// One phase (setup, call, teardown) of a test, or a subtest, with
    /// pytest's own category for it (`passed`, `failed`, `error`,
    /// `skipped`, `xfailed`, `xpassed`, `subtests passed`, or none).
    Phase {
        nodeid: String,
        when: String,
        outcome: String,
        category: String,
        counted: bool,
        #[serde(default)]
        subtest: bool,
        duration: f64,
        message: Option<String>,
        /// `[[ATTACHMENT|path]]` lines of the phase's output.
        #[serde(default)]
        attachments: Vec<String>,
    },
    /// The session ended with this exit status; `counts` are those of
    /// pytest's closing line, by category.
    End {
        exitstatus: i32,
        counts: BTreeMap<String, i32>,
    },
}

impl ReporterEvent {
    /// One JSON line, or `None` for a line this service does not know.
    pub fn parse(line: &[u8]) -> Option<ReporterEvent> {
        serde_json::from_slice(line).ok()
    }
}

/// A test whose phases are still coming in.
#[derive(Debug, Default)]
struct OpenCase {
    outcome: Option<CaseOutcome>,
    message: Option<String>,
    seconds: f64,
    attachments: Vec<String>,
}

impl OpenCase {
    /// The worst verdict wins: a failure over an error (a failed call then
    /// a failing teardown), both over the rest.
    fn mark(&mut self, outcome: CaseOutcome, message: Option<String>) {
        let rank = |o: Option<CaseOutcome>| match o {
            Some(CaseOutcome::Failed) => 6,
            Some(CaseOutcome::Error) => 5,
            Some(CaseOutcome::Xpassed) => 4,
            Some(CaseOutcome::Xfailed) => 3,
            Some(CaseOutcome::Skipped) => 2,
            Some(CaseOutcome::Passed) => 1,
            None => 0,
        };
        if rank(Some(outcome)) > rank(self.outcome) {
            self.outcome = Some(outcome);
            if message.is_some() {
                self.message = message;
            }
        } else if self.message.is_none() && outcome == self.outcome.unwrap_or(outcome) {
            self.message = message;
        }
    }

    fn close(self, nodeid: String) -> CaseResult {
        let outcome = self.outcome.unwrap_or(CaseOutcome::Passed);
        CaseResult {
            nodeid,
            outcome,
            duration_ms: (self.seconds * 1000.0).round().max(0.0) as i64,
            message: match outcome {
                CaseOutcome::Passed => None,
                _ => self.message.map(cut),
            },
            attachments: self.attachments,
        }
    }
}

fn cut(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message;
    }
    message.chars().take(MAX_MESSAGE_CHARS).collect()
}

/// The outcome of one phase, from pytest's category for it.
fn phase_outcome(when: &str, category: &str, outcome: &str) -> Option<CaseOutcome> {
    match category {
        "passed" => Some(CaseOutcome::Passed),
        "failed" if when == "call" => Some(CaseOutcome::Failed),
        "failed" | "error" => Some(CaseOutcome::Error),
        "skipped" => Some(CaseOutcome::Skipped),
        "xfailed" => Some(CaseOutcome::Xfailed),
        "xpassed" => Some(CaseOutcome::Xpassed),
        // No category of its own (a passing setup or teardown, a subtest
        // pass): only a failure counts.
        _ if outcome == "failed" => Some(CaseOutcome::Error),
        _ => None,
    }
}

/// Everything the events added up to so far.
#[derive(Debug, Default)]
pub struct Results {
    /// Whether the plugin reported at all.
    pub connected: bool,
    collected: Option<i32>,
    /// Counts by pytest category, as the reports came.
    live: BTreeMap<String, i32>,
    /// The counts of pytest's closing line, once the session ended.
    closing: Option<BTreeMap<String, i32>>,
    /// pytest's exit status, once the session ended.
    pub exit_status: Option<i32>,
    open: HashMap<String, OpenCase>,
    /// The test whose phases are under way, if any.
    running: Option<String>,
    /// Tests finished since the last [`Results::take_finished`].
    finished: Vec<CaseResult>,
    completed: i32,
    /// Node ids the run named that pytest did not find.
    pub not_found: Vec<String>,
}

impl Results {
    pub fn take(&mut self, event: ReporterEvent) {
        self.connected = true;
        match event {
            ReporterEvent::Collected { count } => self.collected = Some(count),
            ReporterEvent::CollectError { nodeid, message } => {
                *self.live.entry("error".into()).or_default() += 1;
                self.finished.push(CaseResult {
                    nodeid,
                    outcome: CaseOutcome::Error,
                    duration_ms: 0,
                    message: Some(cut(message)),
                    attachments: Vec::new(),
                });
            }
            ReporterEvent::NotFound { nodeid } => self.not_found.push(nodeid),
            ReporterEvent::TestStart { nodeid } => {
                self.open.entry(nodeid.clone()).or_default();
                self.running = Some(nodeid);
            }
            ReporterEvent::Phase {
                nodeid,
                when,
                outcome,
                category,
                counted,
                subtest,
                duration,
                message,
                attachments,
            } => {
                if counted && !category.is_empty() {
                    *self.live.entry(category.clone()).or_default() += 1;
                }
                let case = self.open.entry(nodeid.clone()).or_default();
                if !subtest {
                    case.seconds += duration.max(0.0);
                }
                for path in attachments {
                    if !case.attachments.contains(&path) {
                        case.attachments.push(path);
                    }
                }
                if let Some(phase) = phase_outcome(&when, &category, &outcome) {
                    // A subtest's pass says nothing of its test's verdict.
                    if !(subtest && phase == CaseOutcome::Passed) {
                        case.mark(phase, message);
                    }
                }
                if when == "teardown" && !subtest {
                    if let Some(case) = self.open.remove(&nodeid) {
                        self.finished.push(case.close(nodeid.clone()));
                        self.completed += 1;
                    }
                    if self.running.as_deref() == Some(nodeid.as_str()) {
                        self.running = None;
                    }
                }
            }
            ReporterEvent::End { exitstatus, counts } => {
                self.exit_status = Some(exitstatus);
                self.closing = Some(counts);
            }
        }
    }

    /// Whether pytest got to the end of its session.
    pub fn ended(&self) -> bool {
        self.exit_status.is_some()
    }

    /// The tests finished since the last call, to store.
    pub fn take_finished(&mut self) -> Vec<CaseResult> {
        std::mem::take(&mut self.finished)
    }

    /// Ends every test still under way as an error saying `why` (pytest
    /// died, the run was stopped): the one that was running, and any whose
    /// teardown never came.
    pub fn interrupt(&mut self, why: &str) -> Option<String> {
        let running = self.running.take();
        let mut open: Vec<(String, OpenCase)> = self.open.drain().collect();
        open.sort_by(|a, b| a.0.cmp(&b.0));
        for (nodeid, mut case) in open {
            case.mark(CaseOutcome::Error, Some(why.to_string()));
            *self.live.entry("error".into()).or_default() += 1;
            self.finished.push(case.close(nodeid));
            self.completed += 1;
        }
        running
    }

    /// The counts so far: pytest's closing line once the session ended,
    /// else those of the reports that came.
    pub fn summary(&self) -> RunSummary {
        let counts = self.closing.as_ref().unwrap_or(&self.live);
        let count = |key: &str| Some(counts.get(key).copied().unwrap_or(0));
        RunSummary {
            total: self.collected,
            passed: count("passed"),
            failed: count("failed"),
            skipped: count("skipped"),
            errors: count("error"),
            xfailed: count("xfailed"),
            xpassed: count("xpassed"),
            subtests_passed: counts.get("subtests passed").copied(),
            completed: Some(self.completed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(nodeid: &str, when: &str, outcome: &str, category: &str) -> ReporterEvent {
        ReporterEvent::Phase {
            nodeid: nodeid.into(),
            when: when.into(),
            outcome: outcome.into(),
            category: category.into(),
            counted: true,
            subtest: false,
            duration: 0.25,
            message: (outcome != "passed").then(|| format!("{when} {outcome}")),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn attachments_of_every_phase_go_to_their_test_once() {
        let mut results = Results::default();
        results.take(ReporterEvent::TestStart {
            nodeid: "a.py::t".into(),
        });
        for (when, files) in [
            ("setup", vec!["setup.log"]),
            ("call", vec!["shot.png", "setup.log"]),
            ("teardown", vec![]),
        ] {
            let mut event = phase("a.py::t", when, "passed", "");
            if let ReporterEvent::Phase { attachments, .. } = &mut event {
                *attachments = files.into_iter().map(String::from).collect();
            }
            results.take(event);
        }
        let finished = results.take_finished();
        assert_eq!(finished.len(), 1);
        assert_eq!(finished[0].attachments, ["setup.log", "shot.png"]);
    }

    fn run(results: &mut Results, nodeid: &str, phases: [(&str, &str); 3]) {
        results.take(ReporterEvent::TestStart {
            nodeid: nodeid.into(),
        });
        for (when, (outcome, category)) in ["setup", "call", "teardown"].into_iter().zip(phases) {
            if !outcome.is_empty() {
                results.take(phase(nodeid, when, outcome, category));
            }
        }
    }

    #[test]
    fn each_test_is_one_case_with_its_worst_phase() {
        let mut results = Results::default();
        results.take(ReporterEvent::Collected { count: 4 });
        run(
            &mut results,
            "a.py::ok",
            [("passed", ""), ("passed", "passed"), ("passed", "")],
        );
        run(
            &mut results,
            "a.py::bad",
            [("passed", ""), ("failed", "failed"), ("failed", "error")],
        );
        run(
            &mut results,
            "a.py::td",
            [("passed", ""), ("passed", "passed"), ("failed", "error")],
        );
        run(
            &mut results,
            "a.py::skip",
            [("skipped", "skipped"), ("", ""), ("passed", "")],
        );
        let cases = results.take_finished();
        let verdicts: Vec<(&str, CaseOutcome)> = cases
            .iter()
            .map(|c| (c.nodeid.as_str(), c.outcome))
            .collect();
        assert_eq!(
            verdicts,
            [
                ("a.py::ok", CaseOutcome::Passed),
                ("a.py::bad", CaseOutcome::Failed),
                ("a.py::td", CaseOutcome::Error),
                ("a.py::skip", CaseOutcome::Skipped),
            ]
        );
        assert_eq!(cases[1].message.as_deref(), Some("call failed"));
        assert_eq!(cases[0].duration_ms, 750);
        let summary = results.summary();
        // As pytest's closing line counts them: "1 failed, 2 passed,
        // 1 skipped, 2 errors".
        assert_eq!(
            (
                summary.passed,
                summary.failed,
                summary.errors,
                summary.skipped
            ),
            (Some(2), Some(1), Some(2), Some(1))
        );
        assert_eq!((summary.total, summary.completed), (Some(4), Some(4)));
    }

    #[test]
    fn a_test_cut_short_is_an_error_saying_why() {
        let mut results = Results::default();
        run(
            &mut results,
            "a.py::first",
            [("passed", ""), ("passed", "passed"), ("passed", "")],
        );
        results.take(ReporterEvent::TestStart {
            nodeid: "a.py::crash".into(),
        });
        results.take(phase("a.py::crash", "setup", "passed", ""));
        assert_eq!(
            results.interrupt("killed by signal 11").as_deref(),
            Some("a.py::crash")
        );
        let cases = results.take_finished();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].outcome, CaseOutcome::Error);
        assert_eq!(cases[1].message.as_deref(), Some("killed by signal 11"));
        assert_eq!(results.summary().errors, Some(1));
        assert!(!results.ended());
    }

    #[test]
    fn the_closing_counts_win_once_the_session_ends() {
        let mut results = Results::default();
        results.take(ReporterEvent::End {
            exitstatus: 1,
            counts: BTreeMap::from([("failed".into(), 3), ("subtests passed".into(), 2)]),
        });
        let summary = results.summary();
        assert_eq!(
            (summary.failed, summary.subtests_passed),
            (Some(3), Some(2))
        );
        assert_eq!(results.exit_status, Some(1));
    }

    #[test]
    fn unknown_lines_are_skipped() {
        assert_eq!(ReporterEvent::parse(b"{\"event\": \"later\"}"), None);
        assert_eq!(ReporterEvent::parse(b"not json"), None);
        assert_eq!(
            ReporterEvent::parse(b"{\"event\": \"collected\", \"count\": 3}"),
            Some(ReporterEvent::Collected { count: 3 })
        );
    }
}
