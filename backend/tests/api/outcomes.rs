//! Summary counts and cases match what pytest itself reports, for the hard
//! cases too.

use serde_json::Value;

use crate::helpers::*;

const EVERYTHING: &str = r#"
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup failed on purpose")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown failed on purpose")

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n < 3

def test_skip():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    assert True

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

class TestGroup:
    def test_in_class(self):
        assert True
"#;

/// The counts of pytest's own closing line, e.g. `1 failed, 2 passed in 0.1s`.
fn pytest_summary(log: &str) -> Vec<(String, i64)> {
    let text = plain(log);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in "))
        .expect("pytest's summary line")
        .trim_matches('=')
        .trim()
        .to_string();
    let counts = line.rsplit_once(" in ").map(|(c, _)| c).unwrap_or_default();
    counts
        .split(", ")
        .filter_map(|part| {
            let (n, word) = part.split_once(' ')?;
            Some((word.to_string(), n.parse().ok()?))
        })
        .collect()
}

fn count(summary: &[(String, i64)], words: &[&str]) -> i64 {
    summary
        .iter()
        .filter(|(w, _)| words.contains(&w.as_str()))
        .map(|(_, n)| n)
        .sum()
}

fn assert_summary_matches_pytest(run: &Value, log: &str) {
    let pytest = pytest_summary(log);
    let ours = &run["summary"];
    assert_eq!(
        ours["passed"].as_i64(),
        Some(count(&pytest, &["passed"])),
        "{pytest:?} vs {ours}"
    );
    assert_eq!(
        ours["failed"].as_i64(),
        Some(count(&pytest, &["failed"])),
        "{pytest:?} vs {ours}"
    );
    assert_eq!(
        ours["skipped"].as_i64(),
        Some(count(&pytest, &["skipped"])),
        "{pytest:?} vs {ours}"
    );
    assert_eq!(
        ours["errors"].as_i64(),
        Some(count(&pytest, &["error", "errors"])),
        "{pytest:?} vs {ours}"
    );
    assert_eq!(
        ours["xfailed"].as_i64(),
        Some(count(&pytest, &["xfailed"])),
        "{pytest:?} vs {ours}"
    );
    assert_eq!(
        ours["xpassed"].as_i64(),
        Some(count(&pytest, &["xpassed"])),
        "{pytest:?} vs {ours}"
    );
}

#[test]
fn counts_match_pytest_for_parametrized_skipped_xfailed_and_erroring_tests() {
    let tests = TestsDir::with(&[("suite/test_everything.py", EVERYTHING)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("ivy", 12, &["suite"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed");
    let log = app.log_text(id);
    assert_summary_matches_pytest(&run, &log);
    assert_eq!(run["summary"]["passed"], 4, "{run}");
    assert_eq!(run["summary"]["failed"], 1);
    assert_eq!(run["summary"]["errors"], 2);

    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    let outcome = |nodeid: &str| {
        cases
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["nodeid"] == nodeid)
            .map(|c| c["outcome"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no case {nodeid} in {cases}"))
    };
    assert_eq!(outcome("suite/test_everything.py::test_param[1]"), "passed");
    assert_eq!(outcome("suite/test_everything.py::test_param[3]"), "failed");
    assert_eq!(outcome("suite/test_everything.py::test_skip"), "skipped");
    // pytest's own verdicts (see docs/API.md), no longer JUnit's.
    assert_eq!(outcome("suite/test_everything.py::test_xfail"), "xfailed");
    assert_eq!(outcome("suite/test_everything.py::test_xpass"), "xpassed");
    assert_eq!(
        outcome("suite/test_everything.py::test_setup_error"),
        "error"
    );
    assert_eq!(
        outcome("suite/test_everything.py::test_teardown_error"),
        "error"
    );
    assert_eq!(
        outcome("suite/test_everything.py::TestGroup::test_in_class"),
        "passed"
    );
}

#[test]
fn a_collection_error_is_an_error_with_the_file_as_its_case() {
    let tests = TestsDir::with(&[
        ("test_ok.py", "def test_ok():\n    pass\n"),
        (
            "test_broken.py",
            "import no_such_module_here\n\ndef test_never():\n    pass\n",
        ),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("jo", 13, &["test_ok.py", "test_broken.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["exit_code"], 2);
    assert!(
        run["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("collection")),
        "{run}"
    );
    assert_summary_matches_pytest(&run, &app.log_text(id));
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    assert!(
        cases
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["nodeid"] == "test_broken.py" && c["outcome"] == "error"),
        "{cases}"
    );
}

#[test]
fn no_tests_collected_is_an_error_not_a_success() {
    let tests = TestsDir::with(&[("test_empty.py", "# nothing here\n")]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("kim", 14, &["test_empty.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["exit_code"], 5);
    assert!(run["status_reason"]
        .as_str()
        .is_some_and(|r| r.contains("no tests")));
}

#[test]
fn a_single_test_can_be_selected_by_node_id() {
    let tests = TestsDir::with(&[(
        "test_pick.py",
        "import pytest\n\n@pytest.mark.parametrize('n', [1, 2])\ndef test_a(n):\n    pass\n\ndef test_b():\n    assert False\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("lee", 15, &["test_pick.py::test_a[2]"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success");
    assert_eq!(run["summary"]["total"], 1);
}

#[test]
fn a_file_deleted_after_queueing_ends_the_run_as_an_error() {
    let tests = TestsDir::with(&[
        (
            "test_hold.py",
            "import time\n\ndef test_hold():\n    time.sleep(1.5)\n",
        ),
        ("test_gone.py", "def test_gone():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let holder = app.create_run("max", 16, &["test_hold.py"]);
    let doomed = app.create_run("max", 16, &["test_gone.py"]);
    std::fs::remove_file(tests.path().join("test_gone.py")).expect("removed");
    app.wait_finished(holder, SECS_30);
    let run = app.wait_finished(doomed, SECS_30);
    assert_eq!(run["status"], "error");
    assert!(
        run["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("test_gone.py")),
        "{run}"
    );
    assert!(app.log_text(doomed).contains("test_gone.py"));
}

#[test]
fn a_test_with_a_very_long_node_id_is_kept_shortened_and_reruns_as_its_file() {
    // Explicit ids of 4 000 varied characters: more than an index entry
    // can hold, and not compressible below it.
    let source = r#"
import random
import string
import pytest

random.seed(7)
LONG = "".join(random.choice(string.ascii_letters + string.digits) for _ in range(4000))

@pytest.mark.parametrize("x", [LONG, "short"], ids=[LONG, "short"])
def test_param(x):
    assert x == "short"
"#;
    let tests = TestsDir::with(&[("long/test_ids.py", source)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("jo", 17, &["long/test_ids.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["summary"]["failed"], 1);
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    let failed: Vec<&str> = cases
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["outcome"] == "failed")
        .filter_map(|c| c["nodeid"].as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{cases}");
    assert!(failed[0].starts_with("long/test_ids.py::test_param["));
    assert!(
        failed[0].len() <= 1024,
        "kept shortened: {}",
        failed[0].len()
    );

    let (status, again) = app.post(
        &format!("/api/runs/{id}/rerun?failed_only=true"),
        &serde_json::json!({}),
    );
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["paths"], serde_json::json!(["long/test_ids.py"]));
    let rerun = app.wait_finished(again["id"].as_i64().expect("id"), SECS_30);
    assert_eq!(rerun["summary"]["failed"], 1, "{rerun}");
}
