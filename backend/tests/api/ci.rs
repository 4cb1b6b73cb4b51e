//! CI integration: a run's JUnit report, and `scripts/ci-run.sh`, which
//! queues a run, streams its log and exits 0 only on success.

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

const PASSING: &str = "def test_fine():\n    print('all good here')\n";
const FAILING: &str = "def test_broken():\n    assert 2 + 2 == 5, 'arithmetic is off'\n";
const SLOW: &str = "import time\n\ndef test_slow():\n    time.sleep(30)\n";

fn ci_run(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ci-run.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .env("EXECUTOR_URL", &app.base)
        .env("EXECUTOR_USER", "ci-bot")
        .env("EXECUTOR_TOKEN", app.token_of("ci-bot"))
        .output()
        .expect("bash runs the script");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_finished_run_serves_its_junit_report_and_others_a_json_404() {
    let tests = TestsDir::with(&[("test_fail.py", FAILING), ("test_slow.py", SLOW)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("uma", 12, &["test_fail.py"]);
    app.wait_finished(id, SECS_30);
    let (status, content_type, xml) = app.get_text(&format!("/api/runs/{id}/junit.xml"));
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/xml"),
        "{content_type}"
    );
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(xml.contains("name=\"test_broken\""), "{xml}");
    assert!(xml.contains("arithmetic is off"), "{xml}");

    assert_error(&app.get("/api/runs/9999/junit.xml"), 404, "not_found");
    assert_error(&app.get("/api/runs/x/junit.xml"), 400, "bad_request");
    let running = app.create_run("uma", 13, &["test_slow.py"]);
    app.wait_run(running, SECS_30, |run| run["status"] == "running");
    assert_error(
        &app.get(&format!("/api/runs/{running}/junit.xml")),
        404,
        "not_found",
    );
}

#[test]
fn the_ci_script_exits_0_for_a_passing_file_and_non_zero_for_a_failing_one() {
    let tests = TestsDir::with(&[("ci/test_pass.py", PASSING), ("ci/test_fail.py", FAILING)]);
    let app = TestApp::spawn(&tests, &[]);
    let report = tempfile::NamedTempFile::new().expect("a temporary file");
    let report_path = report.path().to_string_lossy().to_string();

    let (code, stdout, stderr) = ci_run(
        &app,
        &["-e", "8", "--junit", &report_path, "ci/test_pass.py"],
    );
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let log = plain(&stdout);
    // The test's own print comes live, between its node id and verdict.
    assert!(log.contains("ci/test_pass.py::test_fine"), "{log}");
    assert!(log.contains("PASSED"), "{log}");
    assert!(
        log.contains("1 passed"),
        "the log is streamed to stdout: {log}"
    );
    assert!(stderr.contains("success"), "{stderr}");
    let xml = std::fs::read_to_string(report.path()).expect("the report");
    assert!(xml.contains("test_fine"), "{xml}");
    let (_, page) = app.get("/api/runs?username=ci-bot");
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["environment_id"], 8);

    let (code, stdout, stderr) = ci_run(&app, &["-e", "8", "--no-color", "ci/test_fail.py"]);
    assert_eq!(code, Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("arithmetic is off"), "{stdout}");
    assert!(!stdout.contains('\u{1b}'), "--no-color strips colours");
    assert!(stderr.contains("failed"), "{stderr}");

    // A run that cannot even be queued: non-zero, with the reason.
    let (code, _, stderr) = ci_run(&app, &["-e", "8", "ci/test_missing.py"]);
    assert_eq!(code, Some(4), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
}
