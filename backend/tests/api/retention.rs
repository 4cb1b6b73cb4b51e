//! Retention: details of runs past `RETENTION_DAYS` are removed unless
//! pinned; insights past their longest window and webhook deliveries
//! that ended a month ago go; the database's size is a metric.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

const LEAVES: &str = "import os\nfrom pathlib import Path\n\n\
def test_leaves_a_file():\n    print('some output')\n    \
(Path(os.environ['TEST_ARTIFACTS_DIR']) / 'out.txt').write_text('kept')\n";

/// Moves a finished run back in time: it finished `seconds` before now
/// (by the database clock), and started a second before that.
fn finished_ago(conn: &mut PgConnection, run: i64, seconds: i64) {
    diesel::sql_query(
        "UPDATE test_runs SET finished_at = now() - make_interval(secs => $2), \
         started_at = now() - make_interval(secs => $2 + 1), \
         created_at = now() - make_interval(secs => $2 + 2) WHERE id = $1",
    )
    .bind::<BigInt, _>(run)
    .bind::<BigInt, _>(seconds)
    .execute(conn)
    .unwrap();
}

fn details(app: &TestApp, run: i64) -> (usize, usize, String) {
    let (_, cases) = app.get(&format!("/api/runs/{run}/cases"));
    let (_, artifacts) = app.get(&format!("/api/runs/{run}/artifacts"));
    let (_, log) = app.get(&format!("/api/runs/{run}/log"));
    (
        cases.as_array().map_or(0, Vec::len),
        artifacts.as_array().map_or(0, Vec::len),
        log["content"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn runs_past_the_window_lose_their_details_unless_pinned() {
    let tests = TestsDir::with(&[("test_leaves.py", LEAVES)]);
    let app = TestApp::spawn(
        &tests,
        &[("RETENTION_DAYS", "1"), ("RETENTION_INTERVAL_SECS", "1")],
    );
    let runs: Vec<i64> = (0..3)
        .map(|_| {
            let id = app.create_run("keeper", 6, &["test_leaves.py"]);
            let run = app.wait_finished(id, Duration::from_secs(30));
            assert_eq!(run["status"], "success", "{run}");
            id
        })
        .collect();
    let (inside, outside, pinned) = (runs[0], runs[1], runs[2]);
    for run in &runs {
        let (cases, artifacts, log) = details(&app, *run);
        assert_eq!((cases, artifacts), (1, 1));
        assert!(log.contains("some output"));
    }

    let (status, pin) = app.post(&format!("/api/runs/{pinned}/pin"), &json!({}));
    assert_eq!(status, 200, "{pin}");
    assert_eq!(pin["pinned"], true);
    assert_eq!(app.run(inside)["pinned"], false);

    // A day is 86 400 s: a minute inside the window, a minute outside.
    let mut conn = app.db.conn();
    finished_ago(&mut conn, inside, 86_400 - 60);
    finished_ago(&mut conn, outside, 86_400 + 60);
    finished_ago(&mut conn, pinned, 86_400 + 60);

    eventually(
        Duration::from_secs(20),
        "the run outside the window is pruned",
        || !app.run(outside)["details_removed_at"].is_null(),
    );
    let pruned = app.run(outside);
    assert_eq!(pruned["status"], "success");
    assert_eq!(
        pruned["summary"]["passed"], 1,
        "the summary stays: {pruned}"
    );
    assert_eq!(pruned["summary"]["total"], 1);
    assert_eq!(details(&app, outside), (0, 0, String::new()));
    let (status, log) = app.get(&format!("/api/runs/{outside}/log"));
    assert_eq!(status, 200);
    assert_eq!(log["complete"], true);
    assert_error(
        &app.get(&format!("/api/runs/{outside}/artifacts/out.txt")),
        404,
        "not_found",
    );
    // It still lists, with its summary.
    let (_, page) = app.get("/api/runs");
    let listed: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
    assert_eq!(listed.len(), 3);
    let listed_outside = listed.iter().find(|r| r["id"] == outside).unwrap();
    assert!(!listed_outside["details_removed_at"].is_null());
    assert_eq!(listed_outside["summary"]["passed"], 1);

    // Just inside, and pinned: kept whole, pass after pass.
    std::thread::sleep(scaled(Duration::from_secs(2)));
    for kept in [inside, pinned] {
        let run = app.run(kept);
        assert!(run["details_removed_at"].is_null(), "{run}");
        let (cases, artifacts, log) = details(&app, kept);
        assert_eq!((cases, artifacts), (1, 1), "run {kept}");
        assert!(log.contains("some output"));
    }

    // Unpinned, the old run goes too.
    let (status, unpinned) = app.delete(&format!("/api/runs/{pinned}/pin"));
    assert_eq!(status, 200);
    assert_eq!(unpinned["pinned"], false);
    eventually(
        Duration::from_secs(20),
        "the unpinned run is pruned",
        || !app.run(pinned)["details_removed_at"].is_null(),
    );
    assert_error(
        &app.post("/api/runs/999999/pin", &json!({})),
        404,
        "not_found",
    );
    assert_error(&app.delete("/api/runs/999999/pin"), 404, "not_found");
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

#[test]
fn insights_and_deliveries_past_their_window_are_pruned_and_recent_ones_kept() {
    let tests = TestsDir::with(&[("test_leaves.py", LEAVES)]);
    // Retention of runs off: insights are pruned anyway.
    let app = TestApp::spawn(&tests, &[]);
    let run = app.create_run("keeper", 6, &["test_leaves.py"]);
    app.wait_finished(run, Duration::from_secs(30));
    let mut conn = app.db.conn();
    for (nodeid, days) in [("t.py::old", 400), ("t.py::edge_kept", 360)] {
        diesel::sql_query(
            "INSERT INTO test_period_stats \
               (period, starts_at, nodeid, failures, durations_ms, histogram, first_run_id) \
             VALUES ('day', date_trunc('day', now()) - make_interval(days => $2::int), $1, 1, \
                     ''::bytea, ''::bytea, 0)",
        )
        .bind::<Text, _>(nodeid)
        .bind::<BigInt, _>(days)
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(
            "INSERT INTO test_flips (nodeid, environment_id, run_id, flipped_at, previous_run_id, previous_at) \
             VALUES ($1, 6, $3, now() - make_interval(days => $2::int), $3, now() - make_interval(days => $2::int))",
        )
        .bind::<Text, _>(nodeid)
        .bind::<BigInt, _>(days)
        .bind::<BigInt, _>(run)
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query(
            "INSERT INTO test_last_results (environment_id, nodeid, passed, run_id, finished_at) \
             VALUES (6, $1, true, $3, now() - make_interval(days => $2::int))",
        )
        .bind::<Text, _>(nodeid)
        .bind::<BigInt, _>(days)
        .bind::<BigInt, _>(run)
        .execute(&mut conn)
        .unwrap();
    }
    // Webhook deliveries that ended more than 30 days ago go; recent ones
    // and those still to be sent stay.
    diesel::sql_query(
        "INSERT INTO webhooks (id, url, events) VALUES (7, 'http://127.0.0.1:9/', '{run.finished}')",
    )
    .execute(&mut conn)
    .unwrap();
    for (note, delivered_days, failed_days, pending) in [
        ("old sent", Some(40), None, false),
        ("old given up", None, Some(31), false),
        ("recent sent", Some(29), None, false),
        ("old still to send", None, None, true),
    ] {
        diesel::sql_query(
            "INSERT INTO webhook_deliveries \
               (webhook_id, event, subject_id, occurred_at, last_error, \
                delivered_at, failed_at, next_attempt_at) \
             VALUES (7, 'run.finished', 1, now() - interval '50 days', $1, \
                     now() - make_interval(days => $2), now() - make_interval(days => $3), \
                     CASE WHEN $4 THEN now() + interval '1 day' ELSE now() END)",
        )
        .bind::<Text, _>(note)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Integer>, _>(delivered_days)
        .bind::<diesel::sql_types::Nullable<diesel::sql_types::Integer>, _>(failed_days)
        .bind::<diesel::sql_types::Bool, _>(pending)
        .execute(&mut conn)
        .unwrap();
    }
    // Insights and deliveries are pruned at start-up (then hourly): a
    // second instance on the database starts and prunes them.
    let _second = TestApp::spawn_on(app.db.clone(), &tests, &[]);
    eventually(
        Duration::from_secs(20),
        "old insights rows and deliveries are pruned",
        || {
            let mut conn = app.db.conn();
            count(
                &mut conn,
                "SELECT count(*) AS n FROM test_flips WHERE nodeid = 't.py::old'",
            ) == 0
                && count(
                    &mut conn,
                    "SELECT count(*) AS n FROM webhook_deliveries WHERE webhook_id = 7",
                ) == 2
        },
    );
    for table in ["test_period_stats", "test_flips", "test_last_results"] {
        let old = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM {table} WHERE nodeid = 't.py::old'"),
        );
        let kept = count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM {table} WHERE nodeid = 't.py::edge_kept'"),
        );
        assert_eq!((table, old, kept), (table, 0, 1));
    }
    #[derive(QueryableByName)]
    struct Note {
        #[diesel(sql_type = Text)]
        last_error: String,
    }
    let deliveries: Vec<String> = diesel::sql_query(
        "SELECT last_error FROM webhook_deliveries WHERE webhook_id = 7 ORDER BY id",
    )
    .load::<Note>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|note| note.last_error)
    .collect();
    assert_eq!(deliveries, ["recent sent", "old still to send"]);
    // The run's own details are kept: RETENTION_DAYS is off.
    assert!(app.run(run)["details_removed_at"].is_null());
    assert_eq!(details(&app, run).0, 1);
}

#[test]
fn metrics_show_the_database_size() {
    let tests = TestsDir::with(&[("test_leaves.py", LEAVES)]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, _, text) = app.get_text("/metrics");
    assert_eq!(status, 200);
    let size: i64 = text
        .lines()
        .find_map(|line| line.strip_prefix("test_executor_database_size_bytes "))
        .unwrap_or_else(|| panic!("a size gauge in\n{text}"))
        .trim()
        .parse()
        .unwrap();
    assert!(
        size > 1_000_000,
        "a migrated database takes some room: {size}"
    );
    assert!(text.contains("test_executor_artifacts_bytes 0"), "{text}");
}
