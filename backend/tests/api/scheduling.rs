//! One run at a time per environment, in creation order; environments run
//! side by side.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::time::Duration;

use crate::helpers::*;

fn interval(run: &Value) -> (DateTime<Utc>, DateTime<Utc>) {
    let time = |field: &str| {
        run[field]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
            .unwrap_or_else(|| panic!("{field} of {run}"))
    };
    (time("started_at"), time("finished_at"))
}

#[test]
fn twenty_runs_created_at_once_on_one_environment_run_one_at_a_time_in_order() {
    let tests = TestsDir::with(&[(
        "test_short.py",
        "import time\n\ndef test_short():\n    time.sleep(0.05)\n",
    )]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "4")]);
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|i| {
                let app = &app;
                scope.spawn(move || app.create_run(&format!("user{i}"), 4, &["test_short.py"]))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("created"))
            .collect()
    });
    let mut runs: Vec<Value> = ids
        .iter()
        .map(|id| app.wait_finished(*id, Duration::from_secs(120)))
        .collect();
    assert!(runs.iter().all(|r| r["status"] == "success"), "{runs:?}");

    runs.sort_by_key(|r| r["id"].as_i64());
    let intervals: Vec<_> = runs.iter().map(interval).collect();
    for pair in intervals.windows(2) {
        let ((_, previous_end), (next_start, _)) = (pair[0], pair[1]);
        assert!(
            next_start >= previous_end,
            "runs overlap or start out of creation order: {intervals:?}"
        );
    }
}

#[test]
fn runs_on_different_environments_run_in_parallel() {
    let tests = TestsDir::with(&[(
        "test_wait.py",
        "import time\n\ndef test_wait():\n    time.sleep(2)\n",
    )]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "2")]);
    let a = app.create_run("ann", 1, &["test_wait.py"]);
    let b = app.create_run("ann", 2, &["test_wait.py"]);
    let (a_start, a_end) = interval(&app.wait_finished(a, SECS_30));
    let (b_start, b_end) = interval(&app.wait_finished(b, SECS_30));
    assert!(
        a_start < b_end && b_start < a_end,
        "the two runs overlap in time"
    );
}

#[test]
fn the_parallel_cap_makes_runs_wait_but_never_refuses_them() {
    let tests = TestsDir::with(&[(
        "test_wait.py",
        "import time\n\ndef test_wait():\n    time.sleep(1)\n",
    )]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "1")]);
    let ids: Vec<i64> = (1..=3)
        .map(|env| app.create_run("cap", env, &["test_wait.py"]))
        .collect();
    let mut intervals: Vec<_> = ids
        .iter()
        .map(|id| interval(&app.wait_finished(*id, SECS_30)))
        .collect();
    intervals.sort();
    for pair in intervals.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "with a cap of 1 nothing overlaps: {intervals:?}"
        );
    }
}

#[test]
fn a_run_on_a_free_environment_is_claimed_before_its_post_answers() {
    let tests = TestsDir::with(&[(
        "test_wait.py",
        "import time\n\ndef test_wait():\n    time.sleep(1)\n",
    )]);
    // No tick would come to its rescue: the request itself claims.
    let app = TestApp::spawn(
        &tests,
        &[("MAX_PARALLEL_RUNS", "2"), ("SCHEDULER_TICK_MS", "3600000")],
    );
    let body =
        serde_json::json!({"username": "ann", "environment_id": 7, "paths": ["test_wait.py"]});
    let (status, first) = app.post("/api/runs", &body);
    assert_eq!(status, 201, "{first}");
    // The answer is the run as created, first in its queue.
    assert_eq!(first["status"], "queued", "{first}");
    assert_eq!(first["queue_position"], 1, "{first}");
    let first_id = first["id"].as_i64().expect("an id");
    let now = app.run(first_id);
    assert_ne!(now["status"], "queued", "claimed by the request: {now}");

    // Behind it, the next one waits its turn and starts when it ends.
    let (status, second) = app.post("/api/runs", &body);
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["queue_position"], 1, "{second}");
    let second_id = second["id"].as_i64().expect("an id");
    assert_eq!(app.run(second_id)["status"], "queued");
    let first = app.wait_finished(first_id, SECS_30);
    let second = app.wait_finished(second_id, SECS_30);
    assert_eq!(first["status"], "success", "{first}");
    assert_eq!(second["status"], "success", "{second}");
    assert!(interval(&second).0 >= interval(&first).1, "one at a time");
}
