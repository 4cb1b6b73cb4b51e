//! Environments as a shared resource: reservations now or next in line,
//! holds after a failure, maintenance, labels and estimates, across
//! instances and past a killed one.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use crate::helpers::*;

const QUICK: &str = "def test_quick():\n    pass\n";
const FAILING: &str = "def test_fails():\n    assert False, 'broken on purpose'\n";
/// Ends once the file `gate` exists next to it.
const GATED: &str = "import os, time\n\nGATE = os.path.join(os.path.dirname(__file__), 'gate')\n\n\
def test_gated():\n    deadline = time.time() + 120\n    while not os.path.exists(GATE) and time.time() < deadline:\n        time.sleep(0.05)\n";

fn tests() -> TestsDir {
    TestsDir::with(&[
        ("test_quick.py", QUICK),
        ("test_failing.py", FAILING),
        ("gated/test_gated.py", GATED),
    ])
}

fn reserve(app: &TestApp, environment: i32, owner: &str, when: &str, minutes: i32) -> (u16, Value) {
    app.post(
        &format!("/api/environments/{environment}/reservations"),
        &json!({"minutes": minutes, "when": when, "owner": owner, "reason": format!("{owner} looks around")}),
    )
}

fn environment(app: &TestApp, id: i32) -> Value {
    let (status, environment) = app.get(&format!("/api/environments/{id}"));
    assert_eq!(status, 200, "{environment}");
    environment
}

/// Waits a little and says whether the run is still queued.
fn still_queued_after(app: &TestApp, id: i64, wait: Duration) -> Value {
    std::thread::sleep(scaled(wait));
    let run = app.run(id);
    assert_eq!(run["status"], "queued", "{run}");
    run
}

#[test]
fn a_reservation_now_holds_an_idle_environment_and_only_its_owners_runs_start() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (status, reservation) = reserve(&app, 70, "alice", "now", 5);
    assert_eq!(status, 201, "{reservation}");
    assert_eq!(reservation["state"], "active");
    assert_eq!(reservation["kind"], "reservation");
    let environment = environment(&app, 70);
    assert_eq!(environment["state"], "held", "{environment}");
    assert_eq!(environment["hold"]["owner"], "alice");
    assert_eq!(environment["hold"]["reservation_id"], reservation["id"]);

    let bobs = app.create_run("bob", 70, &["test_quick.py"]);
    let run = still_queued_after(&app, bobs, Duration::from_secs(1));
    let why = run["status_reason"].as_str().unwrap_or_default();
    assert!(why.contains("held by alice"), "{run}");
    let alices = app.create_run("alice", 70, &["test_quick.py"]);
    assert_eq!(app.wait_finished(alices, SECS_30)["status"], "success");
    assert_eq!(app.run(bobs)["status"], "queued", "still held");

    let id = reservation["id"].as_i64().unwrap();
    let (status, _) = app.delete(&format!("/api/reservations/{id}"));
    assert_eq!(status, 204);
    assert_eq!(app.wait_finished(bobs, SECS_30)["status"], "success");
    let (_, ended) = app.get(&format!("/api/reservations/{id}"));
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_error(
        &app.delete(&format!("/api/reservations/{id}")),
        409,
        "conflict",
    );
}

#[test]
fn now_on_a_busy_environment_is_refused_and_next_waits_between_runs() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let gated = app.create_run("gus", 71, &["gated"]);
    app.wait_run(gated, SECS_30, |r| r["status"] == "running");
    assert_error(&reserve(&app, 71, "carol", "now", 5), 409, "conflict");

    let (status, reservation) = reserve(&app, 71, "carol", "next", 5);
    assert_eq!(status, 201, "{reservation}");
    assert_eq!(reservation["state"], "waiting");
    assert_eq!(reservation["queue_position"], 1);
    let daves = app.create_run("dave", 71, &["test_quick.py"]);
    let run = app.run(daves);
    assert_eq!(run["queue_position"], 2, "behind the reservation: {run}");
    let starts = run["estimated_start_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let reserved_until = reservation["expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !starts.is_empty() && starts >= reserved_until,
        "{starts} vs {reserved_until}"
    );

    // One that changes their mind before their turn leaves the queue.
    let (status, later) = reserve(&app, 71, "zed", "next", 5);
    assert_eq!(status, 201, "{later}");
    assert_eq!(later["queue_position"], 3);
    let (status, _) = app.request_as(
        "zed",
        "DELETE",
        &format!("/api/reservations/{}", later["id"]),
    );
    assert_eq!(status, 204);
    let (_, gone) = app.get(&format!("/api/reservations/{}", later["id"]));
    assert_eq!(gone["state"], "ended", "{gone}");
    assert_eq!(gone["end_reason"], "released", "by its owner: {gone}");
    assert_eq!(gone["starts_at"], Value::Null, "it never started");

    tests.write("gated/gate", "");
    app.wait_finished(gated, SECS_30);
    let id = reservation["id"].as_i64().unwrap();
    eventually(SECS_30, "the reservation holds the environment", || {
        app.get(&format!("/api/reservations/{id}")).1["state"] == "active"
    });
    assert_eq!(environment(&app, 71)["hold"]["owner"], "carol");
    still_queued_after(&app, daves, Duration::from_secs(1));
    let (status, extended) = app.post(
        &format!("/api/reservations/{id}/extend"),
        &json!({"minutes": 10}),
    );
    assert_eq!(status, 200, "{extended}");
    assert!(extended["expires_at"].as_str() > reservation["expires_at"].as_str());
    assert_error(
        &app.post(
            &format!("/api/reservations/{id}/extend"),
            &json!({"minutes": 0}),
        ),
        422,
        "validation",
    );
    app.delete(&format!("/api/reservations/{id}"));
    assert_eq!(app.wait_finished(daves, SECS_30)["status"], "success");
}

#[test]
fn a_waiting_reservation_can_be_taken_out_of_the_queue() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (_, alices) = reserve(&app, 74, "alice", "now", 5);
    let (status, bobs) = reserve(&app, 74, "bob", "next", 5);
    assert_eq!(status, 201, "{bobs}");
    assert_eq!(environment(&app, 74)["reservations_waiting"], 1);

    let id = bobs["id"].as_i64().unwrap();
    let (status, body) = app.delete(&format!("/api/reservations/{id}"));
    assert_eq!(status, 204, "{body}");
    let (_, ended) = app.get(&format!("/api/reservations/{id}"));
    assert_eq!(ended["state"], "ended", "{ended}");
    assert_eq!(
        ended["end_reason"], "ended by admin",
        "by an admin: {ended}"
    );
    assert!(
        ended["starts_at"].is_null(),
        "it never held anything: {ended}"
    );
    let environment = environment(&app, 74);
    assert_eq!(environment["reservations_waiting"], 0, "{environment}");
    assert_eq!(environment["hold"]["reservation_id"], alices["id"]);
}

#[test]
fn a_failed_run_keeps_its_environment_for_its_user_when_asked() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (status, run) = app.post(
        "/api/runs",
        &json!({"username": "erin", "environment_id": 72, "paths": ["test_failing.py"],
                "hold_on_failure_minutes": 30}),
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["hold_on_failure_minutes"], 30);
    let id = run["id"].as_i64().unwrap();
    let frank = app.create_run("frank", 72, &["test_quick.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed");
    let environment = environment(&app, 72);
    assert_eq!(environment["state"], "held", "{environment}");
    assert_eq!(environment["hold"]["owner"], "erin");
    let hold_id = environment["hold"]["reservation_id"].as_i64().unwrap();
    let (_, hold) = app.get(&format!("/api/reservations/{hold_id}"));
    assert_eq!(hold["kind"], "hold");
    assert_eq!(hold["run_id"], id);
    still_queued_after(&app, frank, Duration::from_secs(1));
    // Erin looks into it, and runs what she wants meanwhile.
    let again = app.create_run("erin", 72, &["test_quick.py"]);
    assert_eq!(app.wait_finished(again, SECS_30)["status"], "success");
    assert_eq!(app.run(frank)["status"], "queued");
    app.delete(&format!("/api/reservations/{hold_id}"));
    assert_eq!(app.wait_finished(frank, SECS_30)["status"], "success");

    let answer = app.post(
        "/api/runs",
        &json!({"username": "erin", "environment_id": 72, "paths": ["test_quick.py"],
                "hold_on_failure_minutes": 121}),
    );
    assert_error(&answer, 422, "validation");
    assert!(answer.1["error"]["fields"]["hold_on_failure_minutes"].is_string());
}

/// Makes the active reservation of `environment` end `seconds` from now,
/// as if it had been asked for that long.
fn shorten(db: &TestDb, environment: i32, seconds: i32) {
    let mut conn = db.conn();
    diesel::sql_query(format!(
        "UPDATE reservations SET expires_at = now() + interval '{seconds} seconds' \
         WHERE environment_id = {environment} AND state = 'active'"
    ))
    .execute(&mut conn)
    .unwrap();
}

#[test]
fn a_hold_ends_by_itself_within_a_tick_even_when_its_instance_died() {
    let tests = tests();
    let db = TestDb::create();
    let mut maker = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "maker")]);
    let other = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "other")]);
    let (status, reservation) = reserve(&maker, 73, "gina", "now", 30);
    assert_eq!(status, 201, "{reservation}");
    let waiting = other.create_run("hank", 73, &["test_quick.py"]);
    maker.signal(libc::SIGKILL);
    maker.wait_exit(Duration::from_secs(5)).expect("killed");
    shorten(&db, 73, 2);
    let ends = Instant::now() + Duration::from_secs(2);
    let run = other.wait_finished(waiting, SECS_30);
    assert_eq!(run["status"], "success");
    let started = other.run(waiting)["started_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, ended) = other.get(&format!("/api/reservations/{}", reservation["id"]));
    assert_eq!(ended["state"], "ended");
    assert_eq!(ended["end_reason"], "expired");
    let expired_at = ended["expires_at"].as_str().unwrap_or_default();
    assert!(
        started.as_str() >= expired_at,
        "started {started} before the hold expired at {expired_at}"
    );
    // The tests' scheduler tick is 200 ms: a second of slack for the run.
    assert!(
        Instant::now().saturating_duration_since(ends) < scaled(Duration::from_secs(20)),
        "started soon after the hold ended"
    );
}

#[test]
fn maintenance_drains_then_takes_the_environment_offline_and_queued_runs_say_why() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let gated = app.create_run("ivy", 74, &["gated"]);
    app.wait_run(gated, SECS_30, |r| r["status"] == "running");
    let queued = app.create_run("ivy", 74, &["test_quick.py"]);
    let (status, draining) = app.post(
        "/api/environments/74/maintenance",
        &json!({"reason": "new database version"}),
    );
    assert_eq!(status, 200, "{draining}");
    assert_eq!(draining["state"], "draining");
    assert_eq!(draining["maintenance"]["reason"], "new database version");
    tests.write("gated/gate", "");
    assert_eq!(app.wait_finished(gated, SECS_30)["status"], "success");
    let run = still_queued_after(&app, queued, Duration::from_secs(1));
    assert!(
        run["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("new database version"),
        "{run}"
    );
    assert_eq!(environment_state(&app, 74), "offline");
    assert_error(&reserve(&app, 74, "ivy", "now", 5), 409, "conflict");
    let (status, back) = app.delete("/api/environments/74/maintenance");
    assert_eq!(status, 200, "{back}");
    assert_eq!(app.wait_finished(queued, SECS_30)["status"], "success");

    // With an end, it ends by itself.
    let until = chrono_in(2);
    let (status, _) = app.post(
        "/api/environments/74/maintenance",
        &json!({"reason": "a reboot", "until": until}),
    );
    assert_eq!(status, 200);
    let after = app.create_run("ivy", 74, &["test_quick.py"]);
    assert_eq!(app.wait_finished(after, SECS_30)["status"], "success");
    let answer = app.post(
        "/api/environments/74/maintenance",
        &json!({"reason": "", "until": "2001-01-01T00:00:00Z"}),
    );
    assert_error(&answer, 422, "validation");
    let fields = &answer.1["error"]["fields"];
    assert!(
        fields["reason"].is_string() && fields["until"].is_string(),
        "{fields}"
    );
}

fn environment_state(app: &TestApp, id: i32) -> String {
    environment(app, id)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// An RFC 3339 time `seconds` from now, by this machine's clock.
fn chrono_in(seconds: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339()
}

#[test]
fn no_run_starts_on_a_held_or_offline_environment_across_instances() {
    let tests = tests();
    let db = TestDb::create();
    let a = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "a")]);
    let b = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "b")]);
    let (status, hold) = reserve(&a, 75, "jane", "now", 30);
    assert_eq!(status, 201, "{hold}");
    let (status, _) = b.post(
        "/api/environments/76/maintenance",
        &json!({"reason": "rewiring"}),
    );
    assert_eq!(status, 200);
    let held: Vec<i64> = (0..6)
        .map(|i| [&a, &b][i % 2].create_run("kim", 75, &["test_quick.py"]))
        .collect();
    let offline: Vec<i64> = (0..6)
        .map(|i| [&a, &b][i % 2].create_run("kim", 76, &["test_quick.py"]))
        .collect();
    std::thread::sleep(scaled(Duration::from_secs(2)));
    for id in held.iter().chain(&offline) {
        assert_eq!(a.run(*id)["status"], "queued", "run {id} waited");
    }
    let released_at = {
        let mut conn = db.conn();
        #[derive(QueryableByName)]
        struct Now {
            #[diesel(sql_type = diesel::sql_types::Text)]
            now: String,
        }
        diesel::sql_query(
            "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') AS now",
        )
        .get_result::<Now>(&mut conn)
        .unwrap()
        .now
    };
    a.delete(&format!("/api/reservations/{}", hold["id"]));
    b.delete("/api/environments/76/maintenance");
    for id in held.iter().chain(&offline) {
        let run = a.wait_finished(*id, SECS_30);
        assert_eq!(run["status"], "success", "{run}");
        assert!(run["started_at"].as_str().unwrap_or_default() > released_at.as_str());
    }
    // In creation order, one at a time, on each environment.
    for ids in [&held, &offline] {
        let starts: Vec<String> = ids
            .iter()
            .map(|id| {
                a.run(*id)["started_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        let mut sorted = starts.clone();
        sorted.sort();
        assert_eq!(starts, sorted);
    }
}

#[test]
fn labels_are_checked_and_estimates_follow_recent_durations() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (status, labelled) = app.put(
        "/api/environments/77",
        &json!({"labels": ["staging", "eu-west"]}),
    );
    assert_eq!(status, 200, "{labelled}");
    assert_eq!(labelled["labels"], json!(["eu-west", "staging"]));
    let answer = app.put("/api/environments/77", &json!({"labels": ["Bad Label"]}));
    assert_error(&answer, 422, "validation");
    assert!(answer.1["error"]["fields"]["labels"].is_string());

    // Once a gated run took a while, the next one behind it is expected
    // about that long after it starts.
    let first = app.create_run("lou", 77, &["gated"]);
    app.wait_run(first, SECS_30, |r| r["status"] == "running");
    std::thread::sleep(Duration::from_millis(1500));
    tests.write("gated/gate", "");
    app.wait_finished(first, SECS_30);
    std::fs::remove_file(tests.path().join("gated/gate")).unwrap();
    let second = app.create_run("lou", 77, &["gated"]);
    let running = app.wait_run(second, SECS_30, |r| r["status"] == "running");
    let third = app.create_run("lou", 77, &["test_quick.py"]);
    let queued = app.run(third);
    let estimate = queued["estimated_start_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!estimate.is_empty(), "{queued}");
    assert!(
        estimate.as_str() > running["started_at"].as_str().unwrap_or_default(),
        "after the run ahead started: {estimate} vs {running}"
    );
    let free = environment(&app, 77);
    assert!(free["estimated_free_at"].is_string(), "{free}");
    tests.write("gated/gate", "");
    app.wait_finished(third, SECS_30);
}
