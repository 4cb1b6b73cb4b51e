//! The invariants under faults: several instances, killed and paused
//! holders, database outages, process trees, huge output, shutdown.

use diesel::prelude::*;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A test that starts a child and a grandchild which ignore SIGINT and
/// SIGTERM, records their pids, ticks the time into a file, and marks its
/// fixture's teardown.
const TREE_HELPER: &str = r#"
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
marks, depth = sys.argv[1], int(sys.argv[2])
if depth < 2:
    subprocess.Popen([sys.executable, __file__, marks, str(depth + 1)])
with open(os.path.join(marks, f"pid-{depth}.tmp"), "w") as f:
    f.write(str(os.getpid()))
os.rename(os.path.join(marks, f"pid-{depth}.tmp"), os.path.join(marks, f"pid-{depth}"))
while True:
    time.sleep(0.1)
"#;

const TREE_TEST: &str = r#"
import os, subprocess, sys, time, pytest
HERE = os.path.dirname(os.path.abspath(__file__))
MARKS = os.path.join(HERE, "marks", os.environ["TEST_RUN_ID"])

@pytest.fixture
def tree():
    os.makedirs(MARKS, exist_ok=True)
    subprocess.Popen([sys.executable, os.path.join(HERE, "tree_helper.py"), MARKS, "1"])
    yield
    open(os.path.join(MARKS, "teardown"), "w").close()

def test_tree(tree):
    deadline = time.time() + 120
    while time.time() < deadline:
        with open(os.path.join(MARKS, "tick.tmp"), "w") as f:
            f.write(repr(time.time()))
        os.replace(os.path.join(MARKS, "tick.tmp"), os.path.join(MARKS, "tick"))
        time.sleep(0.05)
"#;

const QUICK_TEST: &str = "import os, time\nHERE = os.path.dirname(os.path.abspath(__file__))\n\ndef test_quick():\n    with open(os.path.join(HERE, 'started-' + os.environ['TEST_RUN_ID']), 'w') as f:\n        f.write(repr(time.time()))\n";

fn tree_tests() -> TestsDir {
    TestsDir::with(&[
        ("tree_helper.py", TREE_HELPER),
        ("test_tree.py", TREE_TEST),
        ("test_quick.py", QUICK_TEST),
    ])
}

fn marks(tests: &TestsDir, run_id: i64) -> PathBuf {
    tests.path().join("marks").join(run_id.to_string())
}

/// The pids of the test's child and grandchild, once both exist.
fn tree_pids(tests: &TestsDir, run_id: i64) -> Vec<i32> {
    let dir = marks(tests, run_id);
    eventually(SECS_30, "the test tree is up", || {
        dir.join("pid-1").exists() && dir.join("pid-2").exists()
    });
    ["pid-1", "pid-2"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(dir.join(f))
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .expect("a pid")
        })
        .collect()
}

fn last_tick(tests: &TestsDir, run_id: i64) -> f64 {
    std::fs::read_to_string(marks(tests, run_id).join("tick"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0.0)
}

fn started_at_by_test(tests: &TestsDir, run_id: i64) -> f64 {
    std::fs::read_to_string(tests.path().join(format!("started-{run_id}")))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .expect("the quick test recorded its start")
}

fn assert_tree_gone(pids: &[i32]) {
    eventually(
        Duration::from_secs(10),
        "no process of the test tree is left",
        || pids.iter().all(|pid| !process_alive(*pid)),
    );
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = diesel::sql_types::Text)]
    holder: String,
}

fn holder_of(db: &TestDb, environment_id: i32) -> Option<String> {
    diesel::sql_query("SELECT holder FROM environment_locks WHERE environment_id = $1")
        .bind::<diesel::sql_types::Integer, _>(environment_id)
        .get_result::<Holder>(&mut db.conn())
        .optional()
        .expect("a query")
        .map(|h| h.holder)
}

fn leases_left(db: &TestDb) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM environment_locks")
        .get_result::<Count>(&mut db.conn())
        .expect("a count")
        .n
}

fn two_instances(tests: &TestsDir, env: &[(&str, &str)]) -> (Arc<TestDb>, TestApp, TestApp) {
    let db = TestDb::create();
    let mut a_env = env.to_vec();
    a_env.push(("INSTANCE_ID", "inst-a"));
    let a = TestApp::spawn_on(Arc::clone(&db), tests, &a_env);
    let mut b_env = env.to_vec();
    b_env.push(("INSTANCE_ID", "inst-b"));
    let b = TestApp::spawn_on(Arc::clone(&db), tests, &b_env);
    (db, a, b)
}

#[test]
fn three_instances_share_the_queue_in_order_and_never_overlap() {
    let tests = TestsDir::with(&[(
        "test_mark.py",
        "import os\nHERE = os.path.dirname(os.path.abspath(__file__))\n\ndef test_mark():\n    path = os.path.join(HERE, 'env-' + os.environ['TEST_ENV_ID'] + '.log')\n    with open(path, 'a') as f:\n        f.write('start ' + os.environ['TEST_RUN_ID'] + '\\n')\n        f.flush()\n    with open(path, 'a') as f:\n        f.write('end ' + os.environ['TEST_RUN_ID'] + '\\n')\n",
    )]);
    let db = TestDb::create();
    let apps: Vec<TestApp> = (0..3)
        .map(|i| {
            TestApp::spawn_on(
                Arc::clone(&db),
                &tests,
                &[
                    ("INSTANCE_ID", &format!("inst-{i}")),
                    ("MAX_PARALLEL_RUNS", "2"),
                ],
            )
        })
        .collect();
    let ids: Vec<(i64, i32)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|worker| {
                let app = &apps[worker % 3];
                scope.spawn(move || {
                    (0..10)
                        .map(|n| {
                            let env = ((worker + n) % 10 + 1) as i32;
                            (app.create_run("load", env, &["test_mark.py"]), env)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("created"))
            .collect()
    });
    assert_eq!(ids.len(), 300);
    for (id, _) in &ids {
        let run = apps[0].wait_finished(*id, Duration::from_secs(300));
        assert_eq!(run["status"], "success", "{run}");
    }
    let mut by_env: HashMap<i32, Vec<i64>> = HashMap::new();
    for (id, env) in &ids {
        by_env.entry(*env).or_default().push(*id);
    }
    for (env, mut expected) in by_env {
        expected.sort();
        let log =
            std::fs::read_to_string(tests.path().join(format!("env-{env}.log"))).expect("marks");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), expected.len() * 2, "environment {env}");
        for (pair, id) in lines.chunks(2).zip(&expected) {
            assert_eq!(
                pair,
                [format!("start {id}"), format!("end {id}")],
                "environment {env}: {log}"
            );
        }
    }
    assert_eq!(leases_left(&db), 0);
}

#[test]
fn a_killed_holder_is_replaced_after_its_lease_and_its_tree_dies_with_it() {
    let tests = tree_tests();
    let (db, a, b) = two_instances(&tests, &[("LEASE_SECS", "2")]);
    let doomed = a.create_run("kill", 1, &["test_tree.py"]);
    let next = a.create_run("kill", 1, &["test_quick.py"]);
    a.wait_run(doomed, SECS_30, |r| r["status"] == "running");
    let pids = tree_pids(&tests, doomed);
    let holder = holder_of(&db, 1).expect("a holder");
    let (mut victim, survivor) = if holder == "inst-a" { (a, b) } else { (b, a) };
    victim.signal(libc::SIGKILL);
    victim.wait_exit(Duration::from_secs(5)).expect("killed");
    let killed_at = Instant::now();

    assert_tree_gone(&pids);
    let run = survivor.wait_finished(doomed, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["status_reason"], "executor lost");
    assert!(
        killed_at.elapsed() < Duration::from_secs(8),
        "reclaimed within lease + sweep"
    );
    let after = survivor.wait_finished(next, SECS_30);
    assert_eq!(after["status"], "success");
    assert_eq!(
        survivor.run(doomed)["status_reason"],
        "executor lost",
        "finished once"
    );
    assert_eq!(leases_left(&db), 0);
}

#[test]
fn a_paused_holder_loses_its_lease_only_after_expiry_and_changes_nothing_after() {
    let tests = tree_tests();
    let (db, a, b) = two_instances(&tests, &[("LEASE_SECS", "3")]);
    let paused_run = a.create_run("pause", 2, &["test_tree.py"]);
    let next = a.create_run("pause", 2, &["test_quick.py"]);
    a.wait_run(paused_run, SECS_30, |r| r["status"] == "running");
    let pids = tree_pids(&tests, paused_run);
    let holder = holder_of(&db, 2).expect("a holder");
    let (paused, other) = if holder == "inst-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    paused.signal(libc::SIGSTOP);
    let run = other.wait_finished(next, SECS_30);
    assert_eq!(run["status"], "success");
    let lost = other.run(paused_run);
    assert_eq!(lost["status"], "error");
    assert_eq!(lost["status_reason"], "executor lost");
    // The paused instance's tests were stopped before the next run began.
    assert!(last_tick(&tests, paused_run) < started_at_by_test(&tests, next));
    assert_tree_gone(&pids);

    let log_before = other.log_text(paused_run);
    paused.signal(libc::SIGCONT);
    std::thread::sleep(scaled(Duration::from_secs(2)));
    let after = other.run(paused_run);
    assert_eq!(
        after["status_reason"], "executor lost",
        "late writes change nothing"
    );
    assert_eq!(after["finished_at"], lost["finished_at"]);
    assert_eq!(other.log_text(paused_run), log_before);
    assert_eq!(leases_left(&db), 0);
    let (status, _) = paused.get("/api/health");
    assert_eq!(status, 200, "the paused instance serves again");
}

#[test]
fn a_short_database_outage_loses_nothing_and_claims_nothing_twice() {
    let tests = TestsDir::with(&[(
        "test_steps.py",
        "import time, pytest\n\n@pytest.mark.parametrize('step', range(12))\ndef test_step(step):\n    time.sleep(0.25)\n",
    )]);
    let proxy = DbProxy::start();
    let db = TestDb::create();
    let url = proxy.url_for(&db);
    let app = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[("DATABASE_URL", &url), ("LEASE_SECS", "6")],
    );
    let id = app.create_run("out", 3, &["test_steps.py"]);
    app.wait_run(id, SECS_30, |r| {
        r["summary"]["passed"].as_i64().unwrap_or(0) >= 1
    });
    proxy.down();
    let asked = Instant::now();
    let (status, health) = app.get("/api/health");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "503 within a second"
    );
    assert_eq!(status, 503);
    assert_eq!(health["database"], "unreachable");
    assert_eq!(health["error"]["code"], "unavailable");
    assert_error(&app.get("/api/runs"), 503, "unavailable");
    std::thread::sleep(Duration::from_millis(1500));
    proxy.up();

    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}");
    let log = plain(&app.log_text(id));
    for step in 0..12 {
        assert!(
            log.contains(&format!("test_step[{step}] PASSED")),
            "step {step} in\n{log}"
        );
    }
    assert!(log.contains("12 passed"));
    #[derive(QueryableByName)]
    struct Fence {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last_value: i64,
    }
    let fence: Fence = diesel::sql_query("SELECT last_value FROM lease_fences")
        .get_result(&mut db.conn())
        .expect("the fence sequence");
    assert_eq!(fence.last_value, 1, "one claim only");
    let after = app.create_run("out", 3, &["test_steps.py::test_step[0]"]);
    assert_eq!(app.wait_finished(after, SECS_30)["status"], "success");
}

#[test]
fn a_long_database_outage_stops_the_tests_before_the_lease_expires() {
    let tests = tree_tests();
    let proxy = DbProxy::start();
    let db = TestDb::create();
    let url = proxy.url_for(&db);
    let app = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[("DATABASE_URL", &url), ("LEASE_SECS", "2")],
    );
    let id = app.create_run("out", 4, &["test_tree.py"]);
    app.wait_run(id, SECS_30, |r| r["status"] == "running");
    let pids = tree_pids(&tests, id);
    proxy.down();
    let cut_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    assert_tree_gone(&pids);
    std::thread::sleep(scaled(Duration::from_secs(3)));
    assert!(
        last_tick(&tests, id) < cut_at + 2.0,
        "the tests stopped within the lease of the outage"
    );
    proxy.up();
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error");
    let next = app.create_run("out", 4, &["test_quick.py"]);
    assert_eq!(app.wait_finished(next, SECS_30)["status"], "success");
    assert_eq!(leases_left(&db), 0);
}

#[test]
fn cancel_kills_the_whole_tree_after_teardown_and_the_next_run_starts() {
    let tests = tree_tests();
    // pytest gets the service's default grace to act on SIGINT, which a
    // busy machine may need.
    let app = TestApp::spawn(&tests, &[("KILL_GRACE_MS", "3000")]);
    let id = app.create_run("cxl", 5, &["test_tree.py"]);
    let next = app.create_run("cxl", 5, &["test_quick.py"]);
    app.wait_run(id, SECS_30, |r| r["status"] == "running");
    let pids = tree_pids(&tests, id);
    let (status, run) = app.post(&format!("/api/runs/{id}/cancel"), &json!({}));
    assert_eq!(status, 200);
    assert_eq!(run["status"], "cancelled", "{run}");
    for pid in &pids {
        assert!(!process_alive(*pid), "pid {pid} survived the cancel");
    }
    assert!(
        marks(&tests, id).join("teardown").exists(),
        "the fixture's teardown ran"
    );
    assert_eq!(app.wait_finished(next, SECS_30)["status"], "success");
}

#[test]
fn cancels_racing_the_claim_end_each_run_exactly_once() {
    let tests = tree_tests();
    let app = TestApp::spawn(&tests, &[]);
    for _ in 0..15 {
        let id = app.create_run("race", 6, &["test_quick.py"]);
        let (status, run) = app.post(&format!("/api/runs/{id}/cancel"), &json!({}));
        assert!(status == 200 || status == 409, "{status} {run}");
        let done = app.wait_finished(id, SECS_30);
        let expected = if status == 200 {
            "cancelled"
        } else {
            "success"
        };
        assert_eq!(done["status"], expected, "{done}");
    }
    eventually(Duration::from_secs(5), "no lease is left", || {
        leases_left(&app.db) == 0
    });
}

#[test]
fn a_timed_out_run_leaves_no_process_behind() {
    let tests = tree_tests();
    let app = TestApp::spawn(&tests, &[("RUN_TIMEOUT_SECS", "3")]);
    let id = app.create_run("slow", 7, &["test_tree.py"]);
    let pids = tree_pids(&tests, id);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["status_reason"], "timed out after 3 s");
    for pid in &pids {
        assert!(!process_alive(*pid), "pid {pid} survived the time-out");
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
fn fifty_megabytes_of_output_keep_memory_bounded_and_the_log_capped() {
    const RSS_BOUND_KIB: u64 = 100 * 1024;
    const CAP: usize = 1024 * 1024;
    let tests = TestsDir::with(&[(
        "test_flood.py",
        "import sys\n\ndef test_flood(capsys):\n    with capsys.disabled():\n        sys.stdout.write('x' * (20 * 1024 * 1024))\n        line = 'y' * 99 + '\\n'\n        for _ in range(300):\n            sys.stdout.write(line * 1000)\n        sys.stdout.write('the end\\n')\n        sys.stdout.flush()\n",
    )]);
    let app = TestApp::spawn(&tests, &[("LOG_MAX_BYTES", &CAP.to_string())]);
    let id = app.create_run("flood", 8, &["test_flood.py"]);
    let mut peak = 0;
    let mut slowest_health = Duration::ZERO;
    loop {
        peak = peak.max(rss_kib(app.pid()));
        let asked = Instant::now();
        assert_eq!(app.get("/api/health").0, 200);
        slowest_health = slowest_health.max(asked.elapsed());
        let run = app.run(id);
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            assert_eq!(run["status"], "success", "{run}");
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(peak < RSS_BOUND_KIB, "peak RSS {peak} KiB");
    assert!(
        slowest_health < Duration::from_millis(500),
        "health took {slowest_health:?}"
    );
    let log = app.log_text(id);
    assert!(log.len() <= CAP + 200, "stored log of {} bytes", log.len());
    assert!(log.contains("bytes cut"), "a marker where the log was cut");
    assert!(plain(&log).contains("1 passed"), "the tail is kept");
}

#[test]
fn shutting_down_finishes_running_tests_as_shut_down_and_releases_them() {
    let tests = tree_tests();
    let mut app = TestApp::spawn(&tests, &[("SHUTDOWN_GRACE_SECS", "1")]);
    let id = app.create_run("bye", 10, &["test_tree.py"]);
    let pids = tree_pids(&tests, id);
    let db = Arc::clone(&app.db);
    app.signal(libc::SIGTERM);
    let status = app
        .wait_exit(Duration::from_secs(20))
        .expect("the service exits");
    assert!(status.success(), "{status:?}");
    for pid in &pids {
        assert!(!process_alive(*pid), "pid {pid} outlived the service");
    }
    assert_eq!(leases_left(&db), 0);
    let other = TestApp::spawn_on(db, &tests, &[]);
    let run = other.run(id);
    assert_eq!(run["status"], "error");
    assert_eq!(run["status_reason"], "executor shut down");
}

#[test]
fn a_restarted_instance_finishes_what_it_held_in_a_past_life_at_once() {
    let tests = tree_tests();
    let db = TestDb::create();
    let env = [("INSTANCE_ID", "stable-id"), ("LEASE_SECS", "60")];
    let mut first = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let id = first.create_run("phoenix", 11, &["test_tree.py"]);
    let pids = tree_pids(&tests, id);
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");
    assert_tree_gone(&pids);
    let second = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let run = second.run(id);
    assert_eq!(
        run["status"], "error",
        "finished at start-up, long before the lease expires"
    );
    assert!(run["status_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("executor lost")));
    let next = second.create_run("phoenix", 11, &["test_quick.py"]);
    assert_eq!(second.wait_finished(next, SECS_30)["status"], "success");
}

/// A test module's head: `start_daemon()` starts a process in a session
/// of its own (out of the run's process group) and returns once it wrote
/// its pid to `marks/<run id>/daemon`.
const DAEMON_STARTER: &str = r#"
import os, signal, subprocess, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))
DAEMON = "import os, sys, time\nif os.fork():\n    sys.exit(0)\nos.setsid()\nwith open(sys.argv[1] + '.tmp', 'w') as f:\n    f.write(str(os.getpid()))\nos.rename(sys.argv[1] + '.tmp', sys.argv[1])\nwhile True:\n    time.sleep(0.1)\n"

def start_daemon():
    marks = os.path.join(HERE, "marks", os.environ["TEST_RUN_ID"])
    os.makedirs(marks, exist_ok=True)
    target = os.path.join(marks, "daemon")
    subprocess.Popen([sys.executable, "-c", DAEMON, target], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()
    while not os.path.exists(target):
        time.sleep(0.05)
"#;

fn daemon_pid(tests: &TestsDir, run_id: i64) -> i32 {
    std::fs::read_to_string(marks(tests, run_id).join("daemon"))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .expect("the daemon's pid")
}

#[test]
fn a_daemon_escaping_into_its_own_session_dies_with_the_run() {
    let module = format!("{DAEMON_STARTER}\ndef test_leaves_a_daemon():\n    start_daemon()\n");
    let tests = TestsDir::with(&[("test_daemon.py", module.as_str())]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("eve", 12, &["test_daemon.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(id));
    assert_tree_gone(&[daemon_pid(&tests, id)]);
}

/// Running as the service's user, a test can kill its own supervisor,
/// which would have killed what the tests left behind: the service then
/// finds those by the run's mark in their environment.
#[test]
fn a_daemon_dies_with_the_run_even_when_a_test_killed_its_supervisor() {
    let module = format!(
        "{DAEMON_STARTER}\ndef test_kills_its_supervisor():\n    start_daemon()\n    \
         os.kill(os.getppid(), signal.SIGKILL)\n    time.sleep(30)\n"
    );
    let tests = TestsDir::with(&[("test_regicide.py", module.as_str())]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("eve", 13, &["test_regicide.py"]);
    let run = app.wait_finished(id, SECS_30);
    let log = app.log_text(id);
    assert_eq!(run["status"], "error", "{log}");
    let reason = run["status_reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("the tests' supervisor was killed by signal 9 (SIGKILL)"),
        "{reason}"
    );
    assert!(
        log.contains("1 process(es) the tests had left outside their group were killed"),
        "{log}"
    );
    assert_tree_gone(&[daemon_pid(&tests, id)]);
    let next = app.create_run("eve", 13, &["test_regicide.py"]);
    assert_eq!(app.wait_finished(next, SECS_30)["status"], "error");
}

/// A warm start's interpreter has the run's variables only in its memory:
/// what it forks without an exec shows the interpreter's own environment,
/// which names its warm start instead.
#[test]
fn a_forked_daemon_dies_with_the_run_even_when_a_test_killed_its_supervisor() {
    let module = r#"
import os, signal, sys, time
HERE = os.path.dirname(os.path.abspath(__file__))

def test_forks_and_kills_its_supervisor():
    assert open("/proc/self/cmdline", "rb").read().split(b"\0")[1] == b"-c", "a warm start"
    marks = os.path.join(HERE, "marks", os.environ["TEST_RUN_ID"])
    os.makedirs(marks, exist_ok=True)
    target = os.path.join(marks, "daemon")
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork():
            os._exit(0)
        with open(target + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(target + ".tmp", target)
        while True:
            time.sleep(0.1)
    os.waitpid(child, 0)
    while not os.path.exists(target):
        time.sleep(0.05)
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
"#;
    let tests = TestsDir::with(&[("test_forker.py", module)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("eve", 14, &["test_forker.py"]);
    let run = app.wait_finished(id, SECS_30);
    let log = app.log_text(id);
    assert_eq!(run["status"], "error", "{log}");
    assert!(
        log.contains("1 process(es) the tests had left outside their group were killed"),
        "{log}"
    );
    assert_tree_gone(&[daemon_pid(&tests, id)]);
}

#[derive(QueryableByName)]
struct RunInstance {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    instance_id: Option<String>,
}

#[test]
fn new_runs_and_freed_environments_are_claimed_across_instances_without_a_tick() {
    let tests = TestsDir::with(&[("test_quick.py", QUICK_TEST)]);
    let db = TestDb::create();
    // Neither instance sweeps again after start-up: only notifications
    // can start these runs. The front serves no environment at all.
    let no_tick = ("SCHEDULER_TICK_MS", "600000");
    let front = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[
            ("INSTANCE_ID", "front"),
            ("RUNNER_LABELS", "nowhere"),
            no_tick,
        ],
    );
    let worker = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[("INSTANCE_ID", "worker"), no_tick],
    );
    // Past both start-up sweeps.
    std::thread::sleep(scaled(Duration::from_millis(500)));
    let ids: Vec<i64> = (0..3)
        .map(|_| front.create_run("dee", 9, &["test_quick.py"]))
        .collect();
    let other = front.create_run("dee", 10, &["test_quick.py"]);
    for id in ids.iter().chain([&other]) {
        let run = worker.wait_finished(*id, SECS_30);
        assert_eq!(run["status"], "success", "{run}");
    }
    let mut conn = db.conn();
    let holders: Vec<Option<String>> = diesel::sql_query(
        "SELECT instance_id FROM test_runs WHERE environment_id IN (9, 10) ORDER BY id",
    )
    .load::<RunInstance>(&mut conn)
    .expect("the runs")
    .into_iter()
    .map(|row| row.instance_id)
    .collect();
    assert_eq!(holders, vec![Some("worker".to_string()); 4]);
    // In order on environment 9, one after the other.
    let runs: Vec<_> = ids.iter().map(|id| worker.run(*id)).collect();
    let at = |run: &serde_json::Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(run[field].as_str().expect("a time"))
            .expect("RFC 3339")
    };
    for pair in runs.windows(2) {
        assert!(
            at(&pair[0], "finished_at") <= at(&pair[1], "started_at"),
            "{} then {}",
            pair[0],
            pair[1]
        );
    }
}

/// The live spare supervisors of service `pid`: its children named
/// `te-supervise` with no child of their own.
fn spare_supervisors(pid: u32) -> Vec<i32> {
    use backend::sys::procfs;
    let named_supervisor = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|name| name.trim_end() == "te-supervise")
    };
    let processes: Vec<procfs::Stat> = procfs::processes().collect();
    // A spare's only child, if any, is the interpreter it started warm.
    processes
        .iter()
        .filter(|p| {
            p.ppid == pid as i32
                && p.is_live()
                && named_supervisor(p.pid)
                && !processes
                    .iter()
                    .any(|other| other.ppid == p.pid && !warm_interpreter(other.pid))
        })
        .map(|p| p.pid)
        .collect()
}

/// Whether `pid` is an interpreter a spare started warm, still waiting.
fn warm_interpreter(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|b| *b == 0)
            .any(|arg| arg.starts_with(b"# test-executor warm start"))
    })
}

/// The children of `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    backend::sys::procfs::processes()
        .filter(|p| p.ppid == pid)
        .map(|p| p.pid)
        .collect()
}

fn wait_for_spare(pid: u32) -> i32 {
    let found = std::cell::Cell::new(None);
    eventually(Duration::from_secs(10), "a spare supervisor waits", || {
        found.set(spare_supervisors(pid).first().copied());
        found.get().is_some()
    });
    found.get().unwrap()
}

/// The interpreter the spare waiting for the next run started, once it
/// has (within `patience`).
fn warm_interpreter_of(spare: i32, patience: Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let found = children_of(spare)
            .into_iter()
            .find(|pid| warm_interpreter(*pid));
        if found.is_some() || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A run whose variables keep it from a warm start (a locale's here) has
/// the next spare start without an interpreter, which such a run would
/// only kill; a run that could have taken one brings it back.
#[test]
fn spares_start_an_interpreter_only_while_runs_can_take_it() {
    let tests = TestsDir::with(&[("test_ok.py", "def test_ok():\n    pass\n")]);
    let app = TestApp::spawn(&tests, &[]);
    let service = app.pid();
    let answer = app.put(
        "/api/environments/16",
        &json!({"variables": {"LC_NOT_A_LOCALE": "1"}}),
    );
    assert_eq!(answer.0, 200, "{answer:?}");
    let first = wait_for_spare(service);
    assert!(
        warm_interpreter_of(first, Duration::from_secs(10)).is_some(),
        "the first spare starts an interpreter"
    );
    // A run on the environment, then the spare that replaced the one it
    // took.
    let run_then_next_spare = |environment: i32, taken: i32| {
        let id = app.create_run("lea", environment, &["test_ok.py"]);
        assert_eq!(app.wait_finished(id, SECS_30)["status"], "success");
        let next = wait_for_spare(service);
        assert_ne!(next, taken);
        next
    };
    let cold_spare = run_then_next_spare(16, first);
    assert_eq!(
        warm_interpreter_of(cold_spare, Duration::from_millis(500)),
        None,
        "after a run that could not take it, none is started"
    );
    let warm_spare = run_then_next_spare(17, cold_spare);
    assert!(
        warm_interpreter_of(warm_spare, Duration::from_secs(10)).is_some(),
        "after a run that could, one is started again"
    );
}

#[test]
fn a_spare_supervisor_killed_while_it_waits_is_replaced_and_dies_with_its_service() {
    let tests = TestsDir::with(&[("test_ok.py", "def test_ok():\n    pass\n")]);
    let mut app = TestApp::spawn(&tests, &[]);
    let service = app.pid();
    let spare = wait_for_spare(service);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(spare),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let id = app.create_run("lea", 9, &["test_ok.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}\n{}", app.log_text(id));
    let next = wait_for_spare(service);
    assert_ne!(next, spare);
    // Its interpreter, started ahead of the next run.
    let warm = std::cell::Cell::new(None);
    eventually(Duration::from_secs(10), "a warm interpreter waits", || {
        warm.set(
            children_of(next)
                .into_iter()
                .find(|pid| warm_interpreter(*pid)),
        );
        warm.get().is_some()
    });
    app.signal(libc::SIGKILL);
    app.wait_exit(Duration::from_secs(5)).expect("killed");
    eventually(
        Duration::from_secs(10),
        "the spare supervisor and its interpreter are gone with their service",
        || !process_alive(next) && !warm.get().is_some_and(process_alive),
    );
}
