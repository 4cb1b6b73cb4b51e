//! The runner as users see it: pytest's own events as the source of every
//! count and case, live; a crash that keeps what was reported; node ids
//! exactly as pytest writes them; termination that always wins; the
//! runner's own variables beyond an environment's reach.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::*;

/// The counts of pytest's closing line in a log, by category.
fn closing_counts(log: &str) -> BTreeMap<String, i64> {
    let line = plain(log)
        .lines()
        .rev()
        .find(|l| l.starts_with('=') && l.contains(" in ") && l.trim_end().ends_with('='))
        .unwrap_or_default()
        .to_string();
    let inner = line.trim_matches('=').trim();
    let counts = inner.rsplit_once(" in ").map_or("", |(counts, _)| counts);
    counts
        .split(", ")
        .filter_map(|part| {
            let (number, word) = part.trim().split_once(' ')?;
            let word = match word {
                "errors" => "error",
                other => other,
            };
            Some((word.to_string(), number.parse().ok()?))
        })
        .collect()
}

/// The run's summary says what pytest's closing line says, count by count.
fn assert_counts_are_pytests(run: &Value, log: &str) {
    let pytest = closing_counts(log);
    assert!(!pytest.is_empty(), "a closing line in\n{log}");
    let summary = &run["summary"];
    for (key, field) in [
        ("passed", "passed"),
        ("failed", "failed"),
        ("skipped", "skipped"),
        ("error", "errors"),
        ("xfailed", "xfailed"),
        ("xpassed", "xpassed"),
        ("subtests passed", "subtests_passed"),
    ] {
        let ours = summary[field].as_i64().unwrap_or(0);
        assert_eq!(
            ours,
            pytest.get(key).copied().unwrap_or(0),
            "{key}: pytest {pytest:?}, ours {summary}"
        );
    }
}

fn outcomes(app: &TestApp, id: i64) -> BTreeMap<String, String> {
    let (status, cases) = app.get(&format!("/api/runs/{id}/cases"));
    assert_eq!(status, 200, "{cases}");
    cases
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["nodeid"].as_str().unwrap_or_default().to_string(),
                c["outcome"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

const GATED: &str = r#"
import os, sys, time

GATE = os.path.join(os.path.dirname(__file__), "gate")

def test_first(capsys):
    with capsys.disabled():
        sys.stdout.write("between the node id and its verdict\n")
    print("a captured print of the first test")

def test_second():
    print("waiting for the gate", flush=True)
    deadline = time.time() + 120
    while not os.path.exists(GATE) and time.time() < deadline:
        time.sleep(0.05)
    assert os.path.exists(GATE)

def test_third():
    pass
"#;

#[test]
fn results_and_prints_arrive_while_the_run_goes() {
    let tests = TestsDir::with(&[("live/test_gated.py", GATED)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("lea", 61, &["live"]);
    // The first test is done, the second waits for the gate: the run is
    // running, and everything so far shows already.
    let run = app.wait_run(id, SECS_30, |run| {
        run["summary"]["completed"].as_i64() == Some(1)
    });
    assert_eq!(run["status"], "running", "{run}");
    assert_eq!(run["summary"]["total"], 3, "{run}");
    assert_eq!(run["summary"]["passed"], 1, "{run}");
    assert_eq!(
        outcomes(&app, id)
            .get("live/test_gated.py::test_first")
            .map(String::as_str),
        Some("passed")
    );
    eventually(SECS_30, "the waiting test's print is in the log", || {
        app.log_text(id).contains("waiting for the gate")
    });
    assert!(app
        .log_text(id)
        .contains("between the node id and its verdict"));
    assert_eq!(app.run(id)["status"], "running");

    tests.write("live/gate", "");
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["summary"]["completed"], 3);
    assert_counts_are_pytests(&run, &app.log_text(id));
    assert_eq!(outcomes(&app, id).len(), 3);
}

const EVERY_VERDICT: &str = r#"
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("no database")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("left a mess")

def test_pass():
    pass

def test_fail():
    assert 1 == 2

def test_setup_error(broken_setup):
    pass

def test_teardown_error_after_a_pass(broken_teardown):
    pass

def test_teardown_error_after_a_failure(broken_teardown):
    assert False, "failed first"

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert 0

@pytest.mark.xfail(reason="maybe")
def test_xpass():
    pass

@pytest.mark.xfail(reason="must fail", strict=True)
def test_strict_xpass():
    pass

@pytest.mark.skip(reason="not today")
def test_skip_mark():
    pass

def test_skip_inside():
    pytest.skip("later")

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n != 2

def test_subtests(subtests):
    for i in range(3):
        with subtests.test(msg="part", i=i):
            assert i != 1
"#;

#[test]
fn counts_equal_pytests_closing_line_whatever_the_verdicts() {
    let tests = TestsDir::with(&[("test_every_verdict.py", EVERY_VERDICT)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("lea", 62, &["test_every_verdict.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed", "{run}");
    assert_counts_are_pytests(&run, &app.log_text(id));
    let cases = outcomes(&app, id);
    let of = |test: &str| {
        cases
            .get(&format!("test_every_verdict.py::{test}"))
            .cloned()
    };
    for (test, outcome) in [
        ("test_pass", "passed"),
        ("test_fail", "failed"),
        ("test_setup_error", "error"),
        ("test_teardown_error_after_a_pass", "error"),
        ("test_teardown_error_after_a_failure", "failed"),
        ("test_xfail", "xfailed"),
        ("test_xpass", "xpassed"),
        ("test_strict_xpass", "failed"),
        ("test_skip_mark", "skipped"),
        ("test_skip_inside", "skipped"),
        ("test_param[1]", "passed"),
        ("test_param[2]", "failed"),
        ("test_subtests", "failed"),
    ] {
        assert_eq!(of(test).as_deref(), Some(outcome), "{test} in {cases:?}");
    }
    assert_eq!(
        run["summary"]["completed"], 14,
        "each test counted once: {run}"
    );
}

#[test]
fn a_dying_pytest_keeps_what_it_reported_and_names_the_test_it_died_in() {
    let tests = TestsDir::with(&[
        (
            "test_segfault.py",
            "import os, signal\n\ndef test_one():\n    pass\n\ndef test_two():\n    assert False\n\n\
             def test_crash():\n    os.kill(os.getpid(), signal.SIGSEGV)\n\ndef test_never():\n    pass\n",
        ),
        (
            "test_hard_exit.py",
            "import os\n\ndef test_one():\n    pass\n\ndef test_exit():\n    os._exit(3)\n",
        ),
    ]);
    let app = TestApp::spawn(&tests, &[]);

    let id = app.create_run("lea", 63, &["test_segfault.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error", "{run}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("SIGSEGV"), "{reason}");
    assert!(reason.contains("test_segfault.py::test_crash"), "{reason}");
    let cases = outcomes(&app, id);
    assert_eq!(
        cases.get("test_segfault.py::test_one").map(String::as_str),
        Some("passed")
    );
    assert_eq!(
        cases.get("test_segfault.py::test_two").map(String::as_str),
        Some("failed")
    );
    assert_eq!(
        cases
            .get("test_segfault.py::test_crash")
            .map(String::as_str),
        Some("error")
    );
    assert!(!cases.contains_key("test_segfault.py::test_never"));
    assert_eq!(run["summary"]["passed"], 1, "{run}");
    assert_eq!(run["summary"]["failed"], 1, "{run}");
    assert_eq!(run["summary"]["errors"], 1, "{run}");
    // The JUnit export is still there, made of what pytest reported.
    let (status, content_type, xml) = app.get_text(&format!("/api/runs/{id}/junit.xml"));
    assert_eq!(status, 200, "{xml}");
    assert!(content_type.contains("xml"));
    assert_eq!(xml.matches("<testcase").count(), 3, "{xml}");
    assert!(xml.contains("SIGSEGV"), "{xml}");

    let id = app.create_run("lea", 63, &["test_hard_exit.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error", "{run}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("exited with code 3"), "{reason}");
    let cases = outcomes(&app, id);
    assert_eq!(
        cases
            .get("test_hard_exit.py::test_exit")
            .map(String::as_str),
        Some("error")
    );
    assert_eq!(
        cases.get("test_hard_exit.py::test_one").map(String::as_str),
        Some("passed")
    );
}

const ODD_IDS: &str = r#"
import pytest

@pytest.mark.parametrize("word", ["ünïcödé", "a::b", "[x]", "plain"])
def test_word(word):
    assert word == "plain"

class TestKind:
    @pytest.mark.parametrize("n", [1, 2])
    def test_n(self, n):
        assert n == 1
"#;

#[test]
fn failed_node_ids_are_pytests_own_and_run_again_byte_for_byte() {
    let tests = TestsDir::with(&[("odd/test_odd_ids.py", ODD_IDS)]);
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("lea", 64, &["odd"]);
    let run = app.wait_finished(first, SECS_30);
    assert_eq!(run["status"], "failed");
    let failed: Vec<String> = outcomes(&app, first)
        .into_iter()
        .filter(|(_, outcome)| outcome == "failed")
        .map(|(nodeid, _)| nodeid)
        .collect();
    assert_eq!(failed.len(), 4, "{failed:?}");
    assert!(
        failed.iter().any(|id| id.contains(r"\xfc")),
        "pytest escapes the parameter: {failed:?}"
    );

    let (status, rerun) = app.post(
        &format!("/api/runs/{first}/rerun?failed_only=true"),
        &json!({}),
    );
    assert_eq!(status, 201, "{rerun}");
    let mut named: Vec<String> = rerun["paths"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p.as_str().unwrap_or_default().to_string())
        .collect();
    named.sort();
    assert_eq!(named, failed);
    let again = rerun["id"].as_i64().unwrap();
    let run = app.wait_finished(again, SECS_30);
    assert_eq!(run["status"], "failed", "{run}");
    let cases = outcomes(&app, again);
    assert_eq!(
        cases.keys().cloned().collect::<Vec<_>>(),
        failed,
        "exactly the failed ones ran"
    );

    // The same ids are accepted when a client sends them.
    let (status, run) = app.post(
        "/api/runs",
        &json!({"username": "lea", "environment_id": 64, "paths": [failed[0]]}),
    );
    assert_eq!(status, 201, "{run}");
}

#[test]
fn thousands_of_failed_tests_run_again_however_many() {
    let tests = TestsDir::with(&[(
        "test_many.py",
        "import pytest\n\n@pytest.mark.parametrize('n', range(2500))\ndef test_n(n):\n    assert n % 2 == 1\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("lea", 65, &["test_many.py"]);
    let run = app.wait_finished(first, Duration::from_secs(120));
    assert_eq!(run["summary"]["failed"], 1250, "{run}");
    let (status, rerun) = app.post(
        &format!("/api/runs/{first}/rerun?failed_only=true"),
        &json!({}),
    );
    assert_eq!(status, 201, "{rerun}");
    assert_eq!(rerun["paths"].as_array().map(Vec::len), Some(1250));
    let again = rerun["id"].as_i64().unwrap();
    let run = app.wait_finished(again, Duration::from_secs(120));
    assert_eq!(run["summary"]["failed"], 1250, "{run}");
    assert_eq!(run["summary"]["passed"], 0, "{run}");
    assert_eq!(outcomes(&app, again).len(), 1250);
}

/// Ignores SIGINT and SIGTERM, leaves a child in a session of its own that
/// holds the output pipe and ignores them too, then never ends.
const SIGNAL_PROOF: &str = r#"
import os, signal, subprocess, sys, time

def test_never_ends():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import signal, time\n"
         "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
         "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
         "time.sleep(3600)\n"],
        start_new_session=True,
    )
    with open(os.path.join(os.path.dirname(__file__), "daemon.pid"), "w") as out:
        out.write(str(child.pid))
    print("the daemon is", child.pid, flush=True)
    while True:
        try:
            time.sleep(3600)
        except BaseException:
            pass
"#;

#[test]
fn a_test_that_ignores_every_signal_ends_at_its_time_out_and_the_next_run_starts() {
    let tests = TestsDir::with(&[
        ("proof/test_signal_proof.py", SIGNAL_PROOF),
        ("test_after.py", "def test_after():\n    pass\n"),
    ]);
    let grace = Duration::from_millis(1000);
    let app = TestApp::spawn(&tests, &[("KILL_GRACE_MS", "1000")]);
    // Long enough for pytest to start even on a loaded machine.
    let timeout = Duration::from_secs(12);
    let (status, _) = app.put(
        "/api/environments/66",
        &json!({"run_timeout_secs": timeout.as_secs()}),
    );
    assert_eq!(status, 200);
    let stuck = app.create_run("lea", 66, &["proof"]);
    let running = app.wait_run(stuck, SECS_30, |run| run["status"] == "running");
    // The stuck run keeps the time-out it started with; the next one gets
    // the default.
    let (status, _) = app.put("/api/environments/66", &json!({"run_timeout_secs": null}));
    assert_eq!(status, 200);
    let next = app.create_run("lea", 66, &["test_after.py"]);
    eventually(SECS_30, "the daemon is started", || {
        tests.path().join("proof/daemon.pid").exists()
    });
    let daemon: i32 = std::fs::read_to_string(tests.path().join("proof/daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let run = app.wait_finished(stuck, SECS_30);
    let took = Duration::from_millis(run["duration_ms"].as_u64().unwrap_or(u64::MAX));
    assert_eq!(run["status"], "error", "{run} (was {running})");
    assert!(
        run["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{run}"
    );
    // From its start to its end: the time-out, three graces, and a few
    // seconds.
    assert!(
        took <= timeout + scaled(grace * 3 + Duration::from_secs(5)),
        "ended {took:?} after it started"
    );
    assert!(
        !process_alive(daemon),
        "the daemon in its own session is gone"
    );
    let cases = outcomes(&app, stuck);
    assert_eq!(
        cases
            .get("proof/test_signal_proof.py::test_never_ends")
            .map(String::as_str),
        Some("error"),
        "the test it was in: {cases:?}"
    );
    let after = app.wait_finished(next, SECS_30);
    assert_eq!(after["status"], "success", "{after}");
}

#[test]
fn a_cancel_ends_a_test_that_ignores_every_signal() {
    let tests = TestsDir::with(&[("proof/test_signal_proof.py", SIGNAL_PROOF)]);
    let app = TestApp::spawn(&tests, &[("KILL_GRACE_MS", "500")]);
    let id = app.create_run("lea", 67, &["proof"]);
    eventually(SECS_30, "the daemon is started", || {
        tests.path().join("proof/daemon.pid").exists()
    });
    let daemon: i32 = std::fs::read_to_string(tests.path().join("proof/daemon.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (status, run) = app.post(&format!("/api/runs/{id}/cancel"), &json!({}));
    assert_eq!(status, 200, "{run}");
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(
        !process_alive(daemon),
        "the daemon in its own session is gone"
    );
}

#[test]
fn the_runners_own_variables_are_out_of_an_environments_reach() {
    let tests = TestsDir::with(&[(
        "test_vars.py",
        "import os\n\ndef test_vars():\n    assert os.environ['TEST_ENV_ID'] == '68'\n\
         assert 'TEST_EXECUTOR_WATCHDOG_MS' not in os.environ\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    for name in [
        "TEST_EXECUTOR_WATCHDOG_MS",
        "TEST_EXECUTOR_PARENT_PID",
        "TEST_ENV_ID",
    ] {
        let answer = app.put(
            "/api/environments/68",
            &json!({"variables": {name: "1", "API_URL": "http://x"}}),
        );
        assert_error(&answer, 422, "validation");
        let why = answer.1["error"]["fields"]["variables"]
            .as_str()
            .unwrap_or_default();
        assert!(why.contains(name), "{why}");
    }
    // Set by hand in the database (as an older version allowed): the
    // runner's own still win.
    let mut conn = app.db.conn();
    use diesel::RunQueryDsl;
    diesel::sql_query(
        "UPDATE environments SET variables = '{\"TEST_EXECUTOR_WATCHDOG_MS\": \"1\", \
         \"TEST_EXECUTOR_PARENT_PID\": \"1\", \"TEST_ENV_ID\": \"999\"}' WHERE id = 68",
    )
    .execute(&mut conn)
    .unwrap();
    let id = app.create_run("lea", 68, &["test_vars.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}\n{}", app.log_text(id));
}

#[test]
fn a_failing_tests_huge_output_is_shown_once() {
    let tests = TestsDir::with(&[(
        "test_loud.py",
        "def test_loud():\n    for i in range(4000):\n        print('line %05d of a loud test' % i)\n    assert False\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("lea", 69, &["test_loud.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed");
    let log = plain(&app.log_text(id));
    let printed = log.matches("line 03999 of a loud test").count();
    assert_eq!(
        printed, 1,
        "shown live, and not repeated in full under the failure"
    );
    assert!(
        log.contains("printed above as the test ran"),
        "{}",
        &log[log.len().saturating_sub(2000)..]
    );
    assert!(log.contains("line 00000 of a loud test"));
}

/// What a test can see of how its interpreter was started, as JSON in the
/// file its environment names.
const SEEN_TEST: &str = r#"import json, os, subprocess, sys

def test_seen():
    child = subprocess.run(["env", "-0"], capture_output=True, check=True).stdout
    seen = {
        "argv": sys.argv,
        "orig_argv": sys.orig_argv[1:],
        "path": sys.path,
        "cwd": os.getcwd(),
        "main": sorted(vars(sys.modules["__main__"])),
        "env": sorted(os.environ),
        "child_env": sorted(e.split(b"=")[0].decode() for e in child.split(b"\0") if e),
        "fds": sorted(
            (fd, os.readlink("/proc/self/fd/" + fd).split(":[")[0])
            for fd in os.listdir("/proc/self/fd")
            if os.path.exists("/proc/self/fd/" + fd)
        ),
        "stdout": os.path.realpath("/proc/self/fd/1") == os.path.realpath("/proc/self/fd/2"),
        "stdin": os.readlink("/proc/self/fd/0"),
        "cmdline": open("/proc/self/cmdline", "rb").read().split(b"\0")[1].decode(),
        "name": __name__,
    }
    with open(os.environ["SEEN_FILE"], "w") as out:
        json.dump(seen, out)
    print("seen by the test")
"#;

#[test]
fn a_warm_start_runs_tests_exactly_as_a_cold_start_would() {
    let tests = TestsDir::with(&[("test_seen.py", SEEN_TEST)]);
    let seen_dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn(&tests, &[]);
    let seen_file = |name: &str| seen_dir.path().join(name).display().to_string();
    let mut seen = Vec::new();
    // A variable the interpreter may read as it starts (a locale's)
    // makes the second run start cold.
    for (environment, variables) in [
        (3, json!({"SEEN_FILE": seen_file("warm.json")})),
        (
            4,
            json!({"SEEN_FILE": seen_file("cold.json"), "LC_NOT_A_LOCALE": "1"}),
        ),
    ] {
        let answer = app.put(
            &format!("/api/environments/{environment}"),
            &json!({ "variables": variables }),
        );
        assert_eq!(answer.0, 200, "{answer:?}");
        let id = app.create_run("lea", environment, &["test_seen.py"]);
        let run = app.wait_finished(id, SECS_30);
        let log = app.log_text(id);
        assert_eq!(run["status"], "success", "{run}\n{log}");
        assert!(log.contains("seen by the test"), "{log}");
        let file = seen_file(if environment == 3 {
            "warm.json"
        } else {
            "cold.json"
        });
        let mut what: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        // The run's own values (its id, its files) differ; their names not.
        for key in ["argv", "orig_argv"] {
            let shape: Vec<String> = what[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|arg| {
                    let arg = arg.as_str().unwrap();
                    arg.split_once('=')
                        .map_or(arg.to_string(), |(k, _)| k.to_string())
                })
                .collect();
            what[key] = json!(shape);
        }
        // The variable that made the cold start, in its environments.
        for key in ["env", "child_env"] {
            what[key] = json!(what[key]
                .as_array()
                .unwrap()
                .iter()
                .filter(|name| *name != "LC_NOT_A_LOCALE")
                .collect::<Vec<_>>());
        }
        seen.push(what);
    }
    let [warm, cold] = &mut seen[..] else {
        unreachable!("two runs")
    };
    assert_eq!(warm["cmdline"], "-c", "the first run started warm: {warm}");
    assert_eq!(cold["cmdline"], "-m", "the second run started cold: {cold}");
    warm["cmdline"] = Value::Null;
    cold["cmdline"] = Value::Null;
    for (key, value) in warm.as_object().unwrap() {
        assert_eq!(value, &cold[key], "{key} differs");
    }
    assert_eq!(warm, cold);
    assert_eq!(warm["stdin"], "/dev/null");
    assert_eq!(warm["stdout"], true);
    assert_eq!(warm["path"][0], tests.path().display().to_string());
    assert!(
        !warm["env"].to_string().contains("TEST_EXECUTOR_WARM"),
        "{warm}"
    );
}

/// A home of its own with its user site directory made (Python reads that
/// directory at start-up when it exists), and that directory.
fn home_with_user_site() -> (tempfile::TempDir, std::path::PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let user_site = std::process::Command::new("python3")
        .args(["-c", "import site; print(site.getusersitepackages())"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    let user_site = std::path::PathBuf::from(String::from_utf8(user_site.stdout).unwrap().trim());
    assert!(user_site.starts_with(home.path()), "{user_site:?}");
    std::fs::create_dir_all(&user_site).unwrap();
    (home, user_site)
}

#[test]
fn what_the_interpreter_prints_as_it_starts_is_in_the_log_warm_or_cold() {
    let (home, user_site) = home_with_user_site();
    std::fs::write(
        user_site.join("usercustomize.py"),
        "import sys\nsys.stderr.write('said at start-up\\n')\n",
    )
    .unwrap();
    let tests = TestsDir::with(&[("test_ok.py", "def test_ok():\n    pass\n")]);
    let home_var = home.path().display().to_string();
    let app = TestApp::spawn(&tests, &[("HOME", home_var.as_str())]);
    let answer = app.put(
        "/api/environments/6",
        &json!({"variables": {"LC_NOT_A_LOCALE": "1"}}),
    );
    assert_eq!(answer.0, 200, "{answer:?}");
    for environment in [5, 6] {
        let id = app.create_run("lea", environment, &["test_ok.py"]);
        let run = app.wait_finished(id, SECS_30);
        let log = app.log_text(id);
        assert_eq!(run["status"], "success", "{run}\n{log}");
        let said = log
            .find("said at start-up")
            .unwrap_or_else(|| panic!("{log}"));
        let session = log
            .find("test session starts")
            .unwrap_or_else(|| panic!("{log}"));
        assert!(said < session, "{log}");
    }
}

/// A package installed while an interpreter waits for the next run (an
/// editable install's `.pth` file, here in the user's site directory) is
/// there for that run: the interpreter started before it is not used.
#[test]
fn a_package_installed_while_an_interpreter_waits_is_there_for_the_next_run() {
    let (home, user_site) = home_with_user_site();
    let tests = TestsDir::with(&[(
        "test_installed.py",
        "def test_installed():\n    import installed_later\n    assert installed_later.HERE\n",
    )]);
    let home_var = home.path().display().to_string();
    let app = TestApp::spawn(&tests, &[("HOME", home_var.as_str())]);
    // The interpreter for the next run has started, and read the site
    // directory without the package.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waiting = || {
        backend::sys::procfs::processes().any(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.pid))
                .is_ok_and(|c| c.windows(26).any(|w| w == b"# test-executor warm start"))
                && std::fs::read(format!("/proc/{}/environ", p.pid))
                    .is_ok_and(|e| e.windows(home_var.len()).any(|w| w == home_var.as_bytes()))
        })
    };
    while !waiting() {
        assert!(std::time::Instant::now() < deadline, "no interpreter waits");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let package = home.path().join("src");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("installed_later.py"), "HERE = True\n").unwrap();
    std::fs::write(
        user_site.join("installed_later.pth"),
        format!("{}\n", package.display()),
    )
    .unwrap();
    let id = app.create_run("lea", 18, &["test_installed.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}\n{}", app.log_text(id));
}
