//! Schedules: fired by a clock the test controls, once per fire across
//! instances, a fire missed while nothing ran made up once at start-up.

use backend::catalog::TestsRoot;
use backend::service::schedules::fire_due;
use chrono::{DateTime, Duration as Span, Timelike, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{json, Value};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::helpers::*;

const PASSING: (&str, &str) = ("test_ok.py", "def test_ok():\n    pass\n");

/// The service's own tick fires only once, at start-up: the test's clock
/// is the only one that moves schedules.
const NO_TICK: [(&str, &str); 1] = [("SCHEDULE_TICK_MS", "3600000")];

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("a time: {value}"))
}

fn runs_of(db: &TestDb, schedule: i64) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM test_runs WHERE schedule_id = $1")
        .bind::<BigInt, _>(schedule)
        .get_result::<Count>(&mut db.conn())
        .unwrap()
        .n
}

fn nightly(app: &TestApp) -> Value {
    let (status, schedule) = app.post(
        "/api/schedules",
        &json!({"name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Berlin",
                "environment_id": 2, "paths": ["test_ok.py"], "enabled": true}),
    );
    assert_eq!(status, 201, "{schedule}");
    schedule
}

#[test]
fn a_schedule_fires_once_per_fire_by_the_clock_it_is_given() {
    let tests = TestsDir::with(&[PASSING]);
    let app = TestApp::spawn(&tests, &NO_TICK);
    let schedule = nightly(&app);
    let id = schedule["id"].as_i64().unwrap();
    // 03:00 in Berlin is 02:00 UTC in winter, 01:00 in summer.
    let fire_at = time(&schedule["next_run_at"]);
    assert!(
        [1, 2].contains(&fire_at.hour()) && fire_at.minute() == 0,
        "{fire_at}"
    );
    assert!(
        fire_at > Utc::now() && fire_at <= Utc::now() + Span::hours(24),
        "{fire_at}"
    );

    let root = TestsRoot::open(tests.path()).unwrap();
    let mut conn = app.db.conn();
    let early = fire_due(&mut conn, &root, 10_000, fire_at - Span::seconds(1)).unwrap();
    assert!(early.is_empty(), "not yet: {early:?}");
    let fired = fire_due(&mut conn, &root, 10_000, fire_at).unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].missed, 0);
    let run_id = fired[0].run.clone().unwrap();
    assert!(
        fire_due(&mut conn, &root, 10_000, fire_at + Span::seconds(30))
            .unwrap()
            .is_empty()
    );

    let (_, schedule) = app.get(&format!("/api/schedules/{id}"));
    assert_eq!(
        time(&schedule["next_run_at"]),
        fire_at + Span::days(1),
        "{schedule}"
    );
    assert_eq!(schedule["last_run_id"], run_id);
    let run = app.wait_finished(run_id, SECS_30);
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["schedule_id"], id);
    assert_eq!(time(&run["scheduled_for"]), fire_at);
    assert!(run["schedule_note"].is_null(), "on time: {run}");
    assert_eq!(run["environment_id"], 2);
    assert_eq!(run["paths"], json!(["test_ok.py"]));

    // The next day's fire, a little late (the tick's delay), is no miss.
    let next = fire_at + Span::days(1);
    let fired = fire_due(&mut conn, &root, 10_000, next + Span::seconds(5)).unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].missed, 0);
    assert_eq!(runs_of(&app.db, id), 2);
}

#[test]
fn instances_firing_at_the_same_moment_queue_one_run() {
    let tests = TestsDir::with(&[PASSING]);
    let app = TestApp::spawn(&tests, &NO_TICK);
    let schedule = nightly(&app);
    let id = schedule["id"].as_i64().unwrap();
    let fire_at = time(&schedule["next_run_at"]);
    let instances = 6;
    let barrier = Arc::new(Barrier::new(instances));
    let fired: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..instances)
            .map(|_| {
                let (barrier, db, path) = (Arc::clone(&barrier), &app.db, tests.path());
                scope.spawn(move || {
                    let root = TestsRoot::open(path).unwrap();
                    let mut conn = db.conn();
                    barrier.wait();
                    fire_due(&mut conn, &root, 10_000, fire_at).unwrap().len()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(fired, 1);
    assert_eq!(runs_of(&app.db, id), 1);
}

#[test]
fn a_fire_missed_while_no_instance_ran_is_run_once_at_start_up() {
    let tests = TestsDir::with(&[PASSING]);
    let db = TestDb::create();
    let id = {
        let app = TestApp::spawn_on(Arc::clone(&db), &tests, &[]);
        let (status, schedule) = app.post(
            "/api/schedules",
            &json!({"name": "every five minutes", "cron": "*/5 * * * *", "timezone": "UTC",
                    "environment_id": 4, "paths": ["test_ok.py"]}),
        );
        assert_eq!(status, 201, "{schedule}");
        schedule["id"].as_i64().unwrap()
    };
    // Every instance was down for three hours.
    diesel::sql_query(
        "UPDATE schedules SET next_run_at = date_trunc('hour', now()) - interval '3 hours' WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .execute(&mut db.conn())
    .unwrap();
    // Two instances start at once.
    let (first, second) = std::thread::scope(|scope| {
        let a = scope.spawn(|| TestApp::spawn_on(Arc::clone(&db), &tests, &[]));
        let b = scope.spawn(|| TestApp::spawn_on(Arc::clone(&db), &tests, &[]));
        (a.join().unwrap(), b.join().unwrap())
    });
    eventually(SECS_30, "the missed fire to be run", || {
        runs_of(&db, id) >= 1
    });
    let (_, runs) = first.get("/api/runs?per_page=10");
    let run = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["schedule_id"] == id)
        .cloned()
        .unwrap();
    let note = run["schedule_note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.contains("missed fires"), "{run}");
    assert!(note.contains("run once"), "{note}");
    let done = second.wait_finished(run["id"].as_i64().unwrap(), SECS_30);
    assert_eq!(done["status"], "success");
    let (_, schedule) = second.get(&format!("/api/schedules/{id}"));
    assert!(time(&schedule["next_run_at"]) > Utc::now(), "{schedule}");
    // However often the instances tick since, still one run for all of it
    // (unless the clock reached the next five minutes meanwhile).
    std::thread::sleep(Duration::from_secs(2));
    let next = time(&schedule["next_run_at"]);
    let expected = if Utc::now() >= next { 2 } else { 1 };
    assert!(runs_of(&db, id) <= expected, "one run for the missed fires");
}

#[test]
fn bad_cron_expressions_and_time_zones_are_refused_naming_the_field() {
    let tests = TestsDir::with(&[PASSING]);
    let app = TestApp::spawn(&tests, &NO_TICK);
    let good = json!({"name": "n", "cron": "30 6 * * 1-5", "timezone": "America/New_York",
                      "environment_id": 1, "paths": ["test_ok.py"]});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let bad = [
        (with("cron", json!("61 * * * *")), "cron"),
        (with("cron", json!("* * * *")), "cron"),
        (with("cron", json!("0 0 6 * * *")), "cron"),
        (with("cron", json!("0 0 31 2 *")), "cron"),
        (with("cron", json!("")), "cron"),
        (with("timezone", json!("Mars/Olympus_Mons")), "timezone"),
        (with("environment_id", json!(999)), "environment_id"),
        (
            with("environment_id", json!(77))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("environment_label".into(), json!("nightly"));
                    Value::Object(o)
                })
                .unwrap(),
            "environment_label",
        ),
        (with("paths", json!(["missing/test_gone.py"])), "paths"),
        (with("paths", json!([])), "paths"),
        (with("name", json!(" ")), "name"),
        (with("enabled", json!("yes")), "enabled"),
    ];
    for (body, field) in bad {
        let answer = app.post("/api/schedules", &body);
        assert_error(&answer, 422, "validation");
        assert!(
            answer.1["error"]["fields"][field].is_string(),
            "{body}: {}",
            answer.1
        );
    }
    assert_eq!(app.get("/api/schedules"), (200, json!([])));

    let (status, schedule) = app.post("/api/schedules", &good);
    assert_eq!(status, 201, "{schedule}");
    let id = schedule["id"].as_i64().unwrap();
    assert_eq!(schedule["enabled"], true);
    assert!(schedule["next_run_at"].is_string());
    // Left out, the user is the caller.
    assert_eq!(schedule["username"], "admin");

    // Disabled: no next fire; enabled again: one.
    let (status, disabled) = app.put(
        &format!("/api/schedules/{id}"),
        &with("enabled", json!(false)),
    );
    assert_eq!(status, 200, "{disabled}");
    assert!(disabled["next_run_at"].is_null());
    assert_error(
        &app.put(
            &format!("/api/schedules/{id}"),
            &with("timezone", json!("Nowhere")),
        ),
        422,
        "validation",
    );
    let (_, again) = app.put(
        &format!("/api/schedules/{id}"),
        &with("cron", json!("0 12 * * *")),
    );
    // The fields left out stay as they are: still disabled.
    assert_eq!(again["cron"], "0 12 * * *");
    assert!(again["next_run_at"].is_null(), "{again}");
    let (status, resumed) = app.put(&format!("/api/schedules/{id}"), &json!({"enabled": true}));
    assert_eq!(status, 200, "{resumed}");
    assert!(resumed["next_run_at"].is_string());
    assert_eq!(resumed["cron"], "0 12 * * *");
    assert_eq!(resumed["timezone"], "America/New_York");
    assert_eq!(resumed["environment_id"], 1);
    assert_eq!(resumed["paths"], json!(["test_ok.py"]));
    let (_, moved) = app.put(
        &format!("/api/schedules/{id}"),
        &json!({"environment_id": 9}),
    );
    assert_eq!(moved["environment_id"], 9, "{moved}");
    assert!(moved["next_run_at"].is_string());
    assert_eq!(app.get("/api/schedules").1.as_array().unwrap().len(), 1);
    assert_eq!(app.delete(&format!("/api/schedules/{id}")).0, 204);
    assert_error(&app.get(&format!("/api/schedules/{id}")), 404, "not_found");
    assert_error(
        &app.put(&format!("/api/schedules/{id}"), &json!({"enabled": true})),
        404,
        "not_found",
    );
    assert_error(
        &app.put(&format!("/api/schedules/{id}"), &good),
        404,
        "not_found",
    );
}
