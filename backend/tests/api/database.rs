//! A stuck database session, a flood of requests, a lost answer: the
//! service keeps every run and every lease, and scheduling goes on.

use diesel::prelude::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::db::leases::{self, Outcome, Stored, Written};
use backend::db::models::NewRunRow;
use shared::{CaseOutcome, CaseResult, RunStatus, RunSummary};

use crate::helpers::*;

const SLEEPER: &str = "import time\n\ndef test_sleep():\n    time.sleep(120)\n";
const QUICK: &str = "def test_quick():\n    pass\n";

/// Another session takes run `id`'s row lock and keeps it (as an instance
/// frozen in the middle of a write would) until the returned connection
/// commits or goes.
fn hold_run_lock(db: &TestDb, id: i64) -> PgConnection {
    let mut conn = db.conn();
    diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
    diesel::sql_query(format!(
        "SELECT id FROM test_runs WHERE id = {id} FOR UPDATE"
    ))
    .execute(&mut conn)
    .unwrap();
    conn
}

#[test]
fn a_session_holding_a_runs_lock_past_its_lease_stops_no_other_environment() {
    let tests = TestsDir::with(&[("test_sleep.py", SLEEPER), ("test_quick.py", QUICK)]);
    let db = TestDb::create();
    let env = [("LEASE_SECS", "2")];
    let frozen = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[("INSTANCE_ID", "frozen"), env[0]],
    );
    let stuck = frozen.create_run("fay", 1, &["test_sleep.py"]);
    frozen.wait_run(stuck, SECS_30, |r| r["status"] == "running");
    let mut lock = hold_run_lock(&db, stuck);
    frozen.signal(libc::SIGSTOP);
    let other = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "other"), env[0]]);
    // The frozen instance's lease expires; taking it back would wait for
    // the lock. Runs on other environments start all the same.
    std::thread::sleep(scaled(Duration::from_secs(3)));
    let started = Instant::now();
    let runs: Vec<i64> = (2..=4)
        .map(|environment| other.create_run("fay", environment, &["test_quick.py"]))
        .collect();
    for id in runs {
        assert_eq!(other.wait_finished(id, SECS_30)["status"], "success");
    }
    assert!(
        started.elapsed() < scaled(Duration::from_secs(20)),
        "other environments went on: {:?}",
        started.elapsed()
    );
    assert_eq!(
        other.run(stuck)["status"],
        "running",
        "its row is still locked"
    );
    // The lock goes: the run is taken back at the next sweep.
    diesel::sql_query("COMMIT").execute(&mut lock).unwrap();
    let run = other.wait_finished(stuck, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["status_reason"], "executor lost");
    frozen.signal(libc::SIGCONT);
}

#[test]
fn a_stuck_session_never_keeps_a_restarted_instance_from_serving() {
    let tests = TestsDir::with(&[("test_sleep.py", SLEEPER), ("test_quick.py", QUICK)]);
    let db = TestDb::create();
    let env = [("INSTANCE_ID", "phoenix"), ("LEASE_SECS", "3")];
    let mut first = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let stuck = first.create_run("fay", 5, &["test_sleep.py"]);
    first.wait_run(stuck, SECS_30, |r| r["status"] == "running");
    let mut lock = hold_run_lock(&db, stuck);
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");
    // Finishing the past life's run would wait for the lock.
    let spawned = Instant::now();
    let second = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    assert!(spawned.elapsed() < scaled(Duration::from_secs(30)));
    let asked = Instant::now();
    let (status, _) = second.get("/api/health");
    assert_eq!(status, 200);
    assert!(asked.elapsed() < Duration::from_secs(2), "answered at once");
    let quick = second.create_run("fay", 6, &["test_quick.py"]);
    assert_eq!(second.wait_finished(quick, SECS_30)["status"], "success");
    diesel::sql_query("COMMIT").execute(&mut lock).unwrap();
    let run = second.wait_finished(stuck, SECS_30);
    assert_eq!(run["status"], "error");
}

const STEPS: &str = "import time, pytest\n\n@pytest.mark.parametrize('step', range(16))\n\
                     def test_step(step):\n    time.sleep(0.25)\n";

#[test]
fn a_flood_of_requests_to_a_slow_database_never_costs_a_running_test_its_lease() {
    let tests = TestsDir::with(&[("test_steps.py", STEPS)]);
    let proxy = DbProxy::start();
    let db = TestDb::create();
    let url = proxy.url_for(&db);
    let app = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[
            ("DATABASE_URL", &url),
            ("LEASE_SECS", "3"),
            ("DB_POOL_SIZE", "2"),
        ],
    );
    let id = app.create_run("fay", 7, &["test_steps.py"]);
    app.wait_run(id, SECS_30, |r| r["status"] == "running");
    // Every answer of the database takes 40 ms: the requests below keep
    // every connection HTTP may use busy all along.
    proxy.slow_down(Duration::from_millis(40));
    let done = Arc::new(AtomicBool::new(false));
    let server_errors = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for i in 0..24 {
            let (done, server_errors, app) = (Arc::clone(&done), Arc::clone(&server_errors), &app);
            scope.spawn(move || {
                let paths = [
                    "/api/insights?days=366".to_string(),
                    "/api/runs?per_page=500".to_string(),
                    format!("/api/runs/{id}/cases"),
                    format!("/api/runs/{id}/log"),
                    "/api/tests/history?path=test_steps.py&limit=500".to_string(),
                ];
                let mut n = i;
                while !done.load(Ordering::SeqCst) {
                    let (status, _) = app.get(&paths[n % paths.len()]);
                    // Refusing (429) or answering late (503) is fair under
                    // a flood; failing is not.
                    if status >= 500 && status != 503 {
                        server_errors.fetch_add(1, Ordering::SeqCst);
                    }
                    n += 1;
                }
            });
        }
        // Stops the requests however the wait ends (a failed one panics).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let _stop = StopOnDrop(&done);
        // Polled like any client: a 503 while the requests' pool is taken
        // is an answer too.
        let run = std::cell::RefCell::new(serde_json::Value::Null);
        eventually(scaled(Duration::from_secs(60)), "the run finished", || {
            let (status, now) = app.get(&format!("/api/runs/{id}"));
            let over =
                status == 200 && !matches!(now["status"].as_str(), Some("queued" | "running"));
            if over {
                *run.borrow_mut() = now;
            }
            over
        });
        let run = run.into_inner();
        assert_eq!(run["status"], "success", "{run}");
        assert_eq!(run["summary"]["passed"], 16, "{run}");
    });
    assert_eq!(server_errors.load(Ordering::SeqCst), 0);
}

#[test]
fn invented_methods_and_query_parameters_keep_nothing_new() {
    let tests = TestsDir::with(&[("test_quick.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[]);
    let (_, _, before) = app.get_text("/metrics");
    for n in 0..300 {
        app.request(&format!("BREW{n}"), "/api/runs");
    }
    let (_, _, after) = app.get_text("/metrics");
    assert!(after.contains("method=\"OTHER\""), "{after}");
    assert!(
        after.len() < before.len() + 4096,
        "{} bytes grew to {}",
        before.len(),
        after.len()
    );

    let id = app.create_run("fay", 8, &["test_quick.py"]);
    app.wait_finished(id, SECS_30);
    let etag = |path: &str| {
        let response = agent_request("GET", &app.url(path)).call().unwrap();
        response.header("etag").unwrap_or_default().to_string()
    };
    let plain = etag(&format!("/api/runs/{id}/cases"));
    for junk in ["?x=1", "?x=2&y=3", "?x=1&x=1"] {
        assert_eq!(
            etag(&format!("/api/runs/{id}/cases{junk}")),
            plain,
            "{junk}"
        );
    }
    assert_eq!(etag("/api/runs?page=1&per_page=50"), etag("/api/runs"));
    assert_ne!(etag("/api/runs?per_page=10"), etag("/api/runs"));
}

#[test]
fn queued_runs_are_capped_with_429() {
    let tests = TestsDir::with(&[("test_sleep.py", SLEEPER), ("test_quick.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[("MAX_QUEUED_RUNS", "3")]);
    let holder = app.create_run("fay", 9, &["test_sleep.py"]);
    app.wait_run(holder, SECS_30, |r| r["status"] == "running");
    let queued: Vec<i64> = (0..3)
        .map(|_| app.create_run("fay", 9, &["test_quick.py"]))
        .collect();
    let answer = app.post(
        "/api/runs",
        &json!({"username": "fay", "environment_id": 9, "paths": ["test_quick.py"]}),
    );
    assert_error(&answer, 429, "too_many");
    assert!(answer.1["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("MAX_QUEUED_RUNS"));
    assert_error(
        &app.post(&format!("/api/runs/{holder}/rerun"), &json!({})),
        429,
        "too_many",
    );
    app.post(&format!("/api/runs/{}/cancel", queued[0]), &json!({}));
    let (status, _) = app.post(
        "/api/runs",
        &json!({"username": "fay", "environment_id": 9, "paths": ["test_quick.py"]}),
    );
    assert_eq!(status, 201, "room again");
    app.post(&format!("/api/runs/{holder}/cancel"), &json!({}));
}

/// A run of `fay` on `environment_id`, as the API asks for one.
fn new_run(environment_id: i32) -> NewRunRow {
    NewRunRow {
        username: "fay".into(),
        environment_id: Some(environment_id),
        environment_label: None,
        paths: json!(["test_quick.py"]),
        rerun_of: None,
        hold_on_failure_minutes: None,
        run_group_id: None,
        shard: None,
        schedule_id: None,
        scheduled_for: None,
        schedule_note: None,
        selection: None,
        token_id: None,
    }
}

/// Queues a run of `fay` on `environment_id`; its id.
fn queue_run(conn: &mut PgConnection, environment_id: i32) -> i64 {
    backend::db::runs::insert(conn, &new_run(environment_id))
        .unwrap()
        .id
}

/// A run asked for on a free environment is inserted running, under its
/// lease, in the call that queues it: one write of its row, and no notice
/// to the other instances that a run is queued. Behind a busy environment,
/// an environment in maintenance or a full queue, it waits or is refused
/// as before, and a missing environment writes nothing.
#[test]
fn a_run_asked_for_on_a_free_environment_starts_in_the_call_that_queues_it() {
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    let mut listener = db.conn();
    diesel::sql_query("LISTEN test_executor")
        .execute(&mut listener)
        .unwrap();
    let queue = |conn: &mut PgConnection, environment_id: i32, max_queued: i64| {
        backend::db::runs::in_catalog_transaction(conn, false, |conn| {
            leases::queue_on(
                conn,
                environment_id,
                max_queued,
                &new_run(environment_id),
                Some(claimer("me")),
            )
        })
        .unwrap()
    };
    let leases::Queued::Started(claim) = queue(&mut conn, 10, 100) else {
        panic!("started at once");
    };
    assert_eq!(claim.environment.id, 10);
    assert_eq!(claim.run.status, RunStatus::Running);
    assert_eq!(claim.run.started_at, Some(claim.run.created_at));
    assert_eq!(lease_on_10(&mut conn), Some((claim.run.id, claim.fence)));
    let stored = backend::db::runs::find(&mut conn, claim.run.id)
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, RunStatus::Running);

    let leases::Queued::Waiting(behind) = queue(&mut conn, 10, 100) else {
        panic!("waits behind the running run");
    };
    assert_eq!(behind.status, RunStatus::Queued);
    assert_eq!(lease_on_10(&mut conn), Some((claim.run.id, claim.fence)));

    diesel::sql_query("UPDATE environments SET maintenance_reason = 'cables' WHERE id = 12")
        .execute(&mut conn)
        .unwrap();
    let leases::Queued::Waiting(in_maintenance) = queue(&mut conn, 12, 100) else {
        panic!("waits for the maintenance to end");
    };
    assert_eq!(status_of(&mut conn, in_maintenance.id), RunStatus::Queued);

    let leases::Queued::TooMany(queued) = queue(&mut conn, 11, 2) else {
        panic!("refused: the queues are full");
    };
    assert_eq!(queued, 2);
    assert!(matches!(
        queue(&mut conn, 1000, 100),
        leases::Queued::NoEnvironment
    ));
    let runs: i64 = backend::db::schema::test_runs::table
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(runs, 3, "a refusal writes nothing");

    diesel::sql_query("SELECT 1")
        .execute(&mut listener)
        .unwrap();
    let notices: Vec<String> = listener
        .notifications_iter()
        .map(|notice| notice.unwrap().payload)
        .filter(|payload| payload.starts_with("queued"))
        .collect();
    assert_eq!(
        notices,
        ["queued 10", "queued 12"],
        "only the runs that wait"
    );
}

/// A session stuck holding the catalog lock (a test file's deletion
/// frozen half way): a run asked for meanwhile gives up at the lock
/// timeout, and its connection is left outside any transaction, clean for
/// the pool's next request. Once the lock is free, runs start again.
#[test]
fn a_run_asked_for_past_a_stuck_catalog_lock_gives_up_and_leaves_its_connection_clean() {
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    let (held, is_held) = std::sync::mpsc::channel();
    let (release, is_released) = std::sync::mpsc::channel::<()>();
    let stuck_db = Arc::clone(&db);
    let stuck = std::thread::spawn(move || {
        let mut stuck = stuck_db.conn();
        backend::db::runs::in_catalog_transaction(&mut stuck, true, |_| {
            held.send(()).unwrap();
            is_released.recv().unwrap();
            Ok::<_, diesel::result::Error>(())
        })
        .unwrap();
    });
    is_held.recv().unwrap();
    diesel::sql_query("SET lock_timeout = '200ms'")
        .execute(&mut conn)
        .unwrap();
    let queue = |conn: &mut PgConnection| {
        backend::db::runs::in_catalog_transaction(conn, false, |conn| {
            leases::queue_on(conn, 10, 100, &new_run(10), Some(claimer("me")))
        })
    };
    let refused = queue(&mut conn);
    assert!(
        matches!(refused, Err(diesel::result::Error::DatabaseError(..))),
        "{refused:?}"
    );
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .expect("no transaction left open, aborted or not");
    conn.transaction(|conn| diesel::sql_query("SELECT 1").execute(conn))
        .expect("a transaction begins anew");
    release.send(()).unwrap();
    stuck.join().unwrap();
    assert!(matches!(queue(&mut conn), Ok(leases::Queued::Started(_))));
    assert_eq!(
        backend::db::schema::test_runs::table
            .count()
            .get_result::<i64>(&mut conn)
            .unwrap(),
        1,
        "the refused run left nothing"
    );
}

fn claimer(holder: &str) -> leases::Claimer<'_> {
    leases::Claimer {
        holder,
        lease_secs: 30,
        runner_labels: None,
        run_tokens: None,
    }
}

/// A database of its own, migrated, with one run claimed by `holder`.
fn claimed_run(holder: &str) -> (Arc<TestDb>, PgConnection, leases::Claim) {
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    queue_run(&mut conn, 10);
    let leases::Claimed::Run(claim) = leases::claim(&mut conn, 10, claimer(holder)).unwrap() else {
        panic!("a claim");
    };
    let claim = *claim;
    (db, conn, claim)
}

fn case(nodeid: &str) -> CaseResult {
    CaseResult {
        nodeid: nodeid.into(),
        outcome: CaseOutcome::Passed,
        duration_ms: 1,
        message: None,
        attachments: Vec::new(),
    }
}

#[test]
fn a_write_retried_after_its_answer_was_lost_neither_leaves_a_hole_nor_repeats() {
    let (_db, mut conn, claim) = claimed_run("me");
    let run = claim.run.id;
    let progress = RunSummary::default();
    let start = Stored::default();
    let first = leases::append(
        &mut conn,
        run,
        claim.fence,
        start,
        "line one\n",
        &[case("a.py::t1")],
        &progress,
    );
    assert_eq!(first.unwrap(), Written::Done);
    // The same write again, as a retry would send it after a lost answer
    // (its buffer has grown since): refused, with what is stored.
    let retry = leases::append(
        &mut conn,
        run,
        claim.fence,
        start,
        "line one\nline two\n",
        &[case("a.py::t1"), case("a.py::t2")],
        &progress,
    );
    assert_eq!(
        retry.unwrap(),
        Written::Behind(Stored {
            log_bytes: 9,
            cases: 1
        })
    );
    let next = leases::append(
        &mut conn,
        run,
        claim.fence,
        Stored {
            log_bytes: 9,
            cases: 1,
        },
        "line two\n",
        &[case("a.py::t2")],
        &progress,
    );
    assert_eq!(next.unwrap(), Written::Done);
    let outcome = Outcome {
        status: RunStatus::Success,
        reason: None,
        exit_code: Some(0),
        summary: progress,
        cases: vec![case("a.py::t3")],
        log_tail: "the end\n".into(),
        junit_xml: None,
    };
    let stale = leases::finish(&mut conn, &claim, 30, Stored::default(), &outcome);
    assert_eq!(
        stale.unwrap(),
        Written::Behind(Stored {
            log_bytes: 18,
            cases: 2
        })
    );
    let done = leases::finish(
        &mut conn,
        &claim,
        30,
        Stored {
            log_bytes: 18,
            cases: 2,
        },
        &outcome,
    );
    assert_eq!(done.unwrap(), Written::Done);
    let log = backend::db::logs::read_all(&mut conn, run).unwrap();
    assert_eq!(log, "line one\nline two\nthe end\n");
    let cases = backend::db::runs::cases(&mut conn, run).unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c.nodeid.as_str()).collect();
    assert_eq!(ids, ["a.py::t1", "a.py::t2", "a.py::t3"]);
    let again = leases::finish(
        &mut conn,
        &claim,
        30,
        Stored {
            log_bytes: 26,
            cases: 3,
        },
        &outcome,
    );
    assert_eq!(again.unwrap(), Written::Lost, "finished once");
}

fn succeeded() -> Outcome {
    Outcome {
        status: RunStatus::Success,
        reason: None,
        exit_code: Some(0),
        summary: RunSummary::default(),
        cases: Vec::new(),
        log_tail: String::new(),
        junit_xml: None,
    }
}

/// Finishes `claim` with `outcome` and claims what comes next on its
/// environment, as a run thread does.
fn finish_handing_on(
    conn: &mut PgConnection,
    claim: &leases::Claim,
    outcome: &Outcome,
) -> (Written, Option<leases::Claim>) {
    leases::finish_and_claim_next(
        conn,
        claim,
        30,
        Stored::default(),
        outcome,
        Some(claimer("me")),
    )
    .unwrap()
}

#[test]
fn a_finish_counts_as_one_change_of_state_whether_it_hands_on_or_not() {
    let (_db, mut conn, first) = claimed_run("me");
    queue_run(&mut conn, 10);
    let version = |conn: &mut PgConnection| backend::db::state::version(conn).unwrap();
    let before = version(&mut conn);
    // One call writes the finished run, its log, the lease and the next run.
    let mut outcome = succeeded();
    outcome.log_tail = "collected 1 item\n1 passed\n".into();
    let (written, handed) = finish_handing_on(&mut conn, &first, &outcome);
    assert_eq!(written, Written::Done);
    let handed = handed.expect("the next run is claimed in the finish");
    assert_eq!(version(&mut conn), before + 1);

    // The bump was that transaction's: the next finish bumps again.
    let (written, none) = finish_handing_on(&mut conn, &handed, &outcome);
    assert_eq!(written, Written::Done);
    assert!(none.is_none(), "nothing left to hand on to");
    assert_eq!(version(&mut conn), before + 2);
}

#[test]
fn a_finish_renews_the_lease_before_anything_and_loses_to_a_reclaim() {
    let (_db, mut conn, claim) = claimed_run("me");
    // The lease expired (a slow end) but nobody took it back yet: the
    // finish renews it first and goes through.
    diesel::sql_query("UPDATE environment_locks SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .unwrap();
    let outcome = succeeded();
    let written = leases::finish(&mut conn, &claim, 30, Stored::default(), &outcome);
    assert_eq!(written.unwrap(), Written::Done);

    // Taken back first: the finish changes nothing.
    let (_db, mut conn, claim) = claimed_run("me");
    diesel::sql_query("UPDATE environment_locks SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .unwrap();
    let taken = leases::reclaim(&mut conn, None, "executor lost").unwrap();
    assert_eq!(taken.len(), 1);
    let written = leases::finish(&mut conn, &claim, 30, Stored::default(), &outcome);
    assert_eq!(written.unwrap(), Written::Lost);
    let run = backend::db::runs::find(&mut conn, claim.run.id)
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Error);
}

/// A listed run is recorded after the listed runs of its environment
/// that came before it, whoever records first: here the run handed on to
/// finishes before anyone recorded the one before it, and the flip
/// between the two is still found.
#[test]
fn runs_of_an_environment_are_recorded_in_the_order_they_ran() {
    let (_db, mut conn, first) = claimed_run("me");
    queue_run(&mut conn, 10);
    let passed = Outcome {
        cases: vec![case("test_quick.py::test_a")],
        ..succeeded()
    };
    let (written, second) = finish_handing_on(&mut conn, &first, &passed);
    let second = second.expect("the second run is claimed");
    assert_eq!(written, Written::Done);
    let failed = Outcome {
        status: RunStatus::Failed,
        exit_code: Some(1),
        cases: vec![CaseResult {
            outcome: CaseOutcome::Failed,
            ..case("test_quick.py::test_a")
        }],
        ..succeeded()
    };
    let written = leases::finish(&mut conn, &second, 30, Stored::default(), &failed);
    assert_eq!(written.unwrap(), Written::Done);
    assert_eq!(
        leases::record_left_over_runs(&mut conn, 0).unwrap(),
        0,
        "the first run was recorded with the second"
    );
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Flip {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        run_id: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        previous_run_id: i64,
    }
    let flips: Vec<Flip> = diesel::sql_query("SELECT run_id, previous_run_id FROM test_flips")
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        flips,
        [Flip {
            run_id: second.run.id,
            previous_run_id: first.run.id
        }]
    );
}

/// Two instances recording the same listed run at once count it once:
/// the second waits for the first's delete of the listing, then finds it
/// gone, whether the first commits or is still recording.
#[test]
fn two_sessions_recording_one_listed_run_count_it_once() {
    let (db, mut conn, first) = claimed_run("me");
    queue_run(&mut conn, 10);
    let with_a_case = Outcome {
        cases: vec![case("test_quick.py::test_a")],
        ..succeeded()
    };
    let (_, second) = finish_handing_on(&mut conn, &first, &with_a_case);
    assert!(second.is_some(), "the first run is listed, not recorded");
    #[derive(QueryableByName)]
    struct Recorded {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        recorded: bool,
    }
    let run_id = first.run.id;
    let record = move |conn: &mut PgConnection| -> QueryResult<bool> {
        diesel::sql_query("SELECT record_listed_run($1) AS recorded")
            .bind::<diesel::sql_types::BigInt, _>(run_id)
            .get_result::<Recorded>(conn)
            .map(|row| row.recorded)
    };
    let mut one = db.conn();
    diesel::sql_query("BEGIN").execute(&mut one).unwrap();
    assert!(record(&mut one).unwrap(), "the first session records it");
    let mut other = db.conn();
    let racing = std::thread::spawn(move || record(&mut other));
    std::thread::sleep(Duration::from_millis(50));
    diesel::sql_query("COMMIT").execute(&mut one).unwrap();
    // Within its 200 ms the second sees the listing gone; past them it
    // fails. Either way it records nothing.
    assert!(!racing.join().unwrap().unwrap_or(false));
    assert!(!record(&mut conn).unwrap(), "nothing is left to record");
    assert_eq!(daily_duration_bytes(&mut conn), 4, "one duration, once");
}

/// The bytes of durations the daily insights rows hold: 4 for each
/// recorded result, so a run recorded twice shows.
fn daily_duration_bytes(conn: &mut PgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    diesel::sql_query(
        "SELECT coalesce(sum(length(durations_ms)), 0)::bigint AS bytes \
         FROM test_period_stats WHERE period = 'day'",
    )
    .get_result::<Bytes>(conn)
    .unwrap()
    .bytes
}

/// The lease on environment 10: its run and fence.
fn lease_on_10(conn: &mut PgConnection) -> Option<(i64, i64)> {
    use backend::db::schema::environment_locks::dsl::*;
    environment_locks
        .filter(environment_id.eq(10))
        .select((run_id, fence))
        .first(conn)
        .optional()
        .unwrap()
}

fn status_of(conn: &mut PgConnection, id: i64) -> RunStatus {
    backend::db::runs::find(conn, id).unwrap().unwrap().status
}

/// A finish claims the next run of its environment in its own transaction,
/// and never waits for a lock to do so: with the environment's row or the
/// next run's row locked by another session, it is written at once, claims
/// nothing and leaves no lease behind, for the scheduler to claim later.
/// Nor does it claim past an older run waiting for a slot elsewhere.
#[test]
fn a_finish_hands_its_environment_on_without_ever_waiting_for_a_lock() {
    let (db, mut conn, first) = claimed_run("me");
    // Were a lock waited for, the test fails instead of hanging.
    diesel::sql_query("SET lock_timeout = '20s'")
        .execute(&mut conn)
        .unwrap();
    let second = queue_run(&mut conn, 10);
    let third = queue_run(&mut conn, 10);
    let finish = |conn: &mut PgConnection, claim: &leases::Claim| {
        let started = Instant::now();
        let finished = finish_handing_on(conn, claim, &succeeded());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no lock waited for"
        );
        finished
    };

    let (written, handed) = finish(&mut conn, &first);
    assert_eq!(written, Written::Done);
    let handed = handed.expect("the next run is claimed in the finish");
    assert_eq!(handed.run.id, second);
    assert_eq!(handed.run.status, RunStatus::Running);
    assert!(handed.fence > first.fence);
    assert_eq!(status_of(&mut conn, first.run.id), RunStatus::Success);
    assert_eq!(status_of(&mut conn, second), RunStatus::Running);
    assert_eq!(lease_on_10(&mut conn), Some((second, handed.fence)));

    // Another session holds the environment's row (a frozen edit).
    let mut editor = db.conn();
    diesel::sql_query("BEGIN").execute(&mut editor).unwrap();
    diesel::sql_query("SELECT id FROM environments WHERE id = 10 FOR UPDATE")
        .execute(&mut editor)
        .unwrap();
    let (written, none) = finish(&mut conn, &handed);
    assert_eq!(written, Written::Done);
    assert!(none.is_none(), "nothing claimed past a locked environment");
    assert_eq!(status_of(&mut conn, second), RunStatus::Success);
    assert_eq!(status_of(&mut conn, third), RunStatus::Queued);
    assert_eq!(lease_on_10(&mut conn), None);
    drop(editor);

    // Another session holds the next run's row (a cancel under way).
    let leases::Claimed::Run(holder) = leases::claim(&mut conn, 10, claimer("me")).unwrap() else {
        panic!("the third run is claimed");
    };
    assert_eq!(holder.run.id, third);
    let fourth = queue_run(&mut conn, 10);
    let lock = hold_run_lock(&db, fourth);
    let (written, none) = finish(&mut conn, &holder);
    assert_eq!(written, Written::Done);
    assert!(none.is_none(), "nothing claimed past a locked run");
    assert_eq!(
        lease_on_10(&mut conn),
        None,
        "no lease left without its run"
    );
    assert_eq!(status_of(&mut conn, fourth), RunStatus::Queued);
    drop(lock);
    let leases::Claimed::Run(last) = leases::claim(&mut conn, 10, claimer("me")).unwrap() else {
        panic!("the fourth run is claimed once its row is free");
    };
    assert_eq!(last.run.id, fourth);

    // An older run waits for a slot on a free environment: it goes first,
    // through the scheduler, not after this environment's next run.
    let elsewhere = queue_run(&mut conn, 11);
    let fifth = queue_run(&mut conn, 10);
    let (written, none) = finish(&mut conn, &last);
    assert_eq!(written, Written::Done);
    assert!(none.is_none(), "the older run elsewhere goes first");
    assert_eq!(lease_on_10(&mut conn), None);
    assert_eq!(status_of(&mut conn, fifth), RunStatus::Queued);
    assert_eq!(status_of(&mut conn, elsewhere), RunStatus::Queued);
}

/// A finish that hands its environment on lists its run instead of adding
/// it to insights and environment health: it is recorded later, exactly
/// once, by the next run, or by the sweep when that run's instance is
/// gone. A finish that hands nothing on records its run at once. Only an
/// environment still free when the finish commits is announced as
/// released.
#[test]
fn a_run_handed_on_from_is_recorded_after_the_finish_and_exactly_once() {
    let (db, mut conn, first) = claimed_run("me");
    let mut listener = db.conn();
    diesel::sql_query("LISTEN test_executor")
        .execute(&mut listener)
        .unwrap();
    let mut notices = move || -> Vec<String> {
        diesel::sql_query("SELECT 1")
            .execute(&mut listener)
            .unwrap();
        listener
            .notifications_iter()
            .map(|notice| notice.unwrap().payload)
            .collect()
    };
    let counted = |conn: &mut PgConnection| -> (i64, i64, i64) {
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            runs: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            results: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            listed: i64,
        }
        let counts: Counts = diesel::sql_query(
            "SELECT (SELECT coalesce(sum(runs), 0) FROM environment_run_stats \
                     WHERE period = 'day')::bigint AS runs, \
                    (SELECT coalesce(sum(passes), 0) FROM environment_test_stats \
                     WHERE period = 'day')::bigint AS results, \
                    (SELECT count(*) FROM runs_to_record) AS listed",
        )
        .get_result(conn)
        .unwrap();
        (counts.runs, counts.results, counts.listed)
    };
    let with_a_case = || Outcome {
        cases: vec![case("test_quick.py::test_a")],
        ..succeeded()
    };
    let second = queue_run(&mut conn, 10);
    notices();

    let (written, handed) = finish_handing_on(&mut conn, &first, &with_a_case());
    assert_eq!(written, Written::Done);
    let handed = handed.expect("the second run is claimed");
    assert_eq!(handed.run.id, second);
    assert_eq!(counted(&mut conn), (0, 0, 1), "listed, not recorded yet");
    let said = notices();
    assert!(
        said.contains(&format!("finished {}", first.run.id)),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|notice| notice.starts_with("released")),
        "an environment handed on is not announced as free: {said:?}"
    );

    leases::record_listed_run(&mut conn, first.run.id).unwrap();
    assert_eq!(counted(&mut conn), (1, 1, 0));
    leases::record_listed_run(&mut conn, first.run.id).unwrap();
    assert_eq!(counted(&mut conn), (1, 1, 0), "recorded once only");

    // Nothing left to hand on to: recorded in the finish itself.
    let (written, none) = finish_handing_on(&mut conn, &handed, &with_a_case());
    assert_eq!(written, Written::Done);
    assert!(none.is_none());
    assert_eq!(counted(&mut conn), (2, 2, 0));
    assert!(notices().contains(&"released 10".to_string()));

    // The next run's instance stopped before recording: the sweep does,
    // once the listing is older than a lease, and only once.
    queue_run(&mut conn, 10);
    let leases::Claimed::Run(third) = leases::claim(&mut conn, 10, claimer("me")).unwrap() else {
        panic!("the third run is claimed");
    };
    queue_run(&mut conn, 10);
    let (_, fourth) = finish_handing_on(&mut conn, &third, &with_a_case());
    let fourth = fourth.expect("the fourth run is claimed");
    assert_eq!(counted(&mut conn), (2, 2, 1));
    assert_eq!(
        leases::record_left_over_runs(&mut conn, 30).unwrap(),
        0,
        "too recent"
    );
    diesel::sql_query("UPDATE runs_to_record SET listed_at = now() - interval '1 minute'")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(leases::record_left_over_runs(&mut conn, 30).unwrap(), 1);
    assert_eq!(leases::record_left_over_runs(&mut conn, 30).unwrap(), 0);
    assert_eq!(counted(&mut conn), (3, 3, 0));

    // A rebuild counts every finished run, listed ones too: it records
    // them first, so that they are not counted again later.
    queue_run(&mut conn, 10);
    let (_, handed) = finish_handing_on(&mut conn, &fourth, &with_a_case());
    assert!(handed.is_some());
    assert_eq!(counted(&mut conn), (3, 3, 1));
    diesel::sql_query("SELECT rebuild_environment_health()")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(counted(&mut conn), (4, 4, 0));
    diesel::sql_query("SELECT rebuild_test_insights()")
        .execute(&mut conn)
        .unwrap();
    leases::record_listed_run(&mut conn, fourth.run.id).unwrap();
    assert_eq!(leases::record_left_over_runs(&mut conn, 0).unwrap(), 0);
    assert_eq!(counted(&mut conn), (4, 4, 0));
    assert_eq!(
        daily_duration_bytes(&mut conn),
        4 * 4,
        "each run's one duration, once"
    );
}

/// The run list's total comes from counters the database keeps: they count
/// the runs there were before they existed, and stay exact through bulk
/// inserts, deletes and a truncate.
#[test]
fn the_run_count_stays_exact_through_inserts_deletes_and_an_upgrade() {
    use diesel_migrations::MigrationHarness;
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    let insert = |conn: &mut PgConnection, n: i32| {
        diesel::sql_query(format!(
            "INSERT INTO test_runs (username, environment_id, paths, status) \
             SELECT 'fay', g % 100 + 1, '[\"test_quick.py\"]'::jsonb, 'success' \
             FROM generate_series(1, {n}) AS g"
        ))
        .execute(conn)
        .unwrap();
    };
    let counted = |conn: &mut PgConnection| {
        #[derive(QueryableByName)]
        struct Counts {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            kept: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            real: i64,
        }
        let c: Counts = diesel::sql_query(
            "SELECT (SELECT coalesce(sum(runs), 0) FROM run_counts)::bigint AS kept, \
                    (SELECT count(*) FROM test_runs)::bigint AS real",
        )
        .get_result(conn)
        .unwrap();
        assert_eq!(c.kept, c.real, "the kept count is the real one");
        c.kept
    };
    // Runs from before the counters: the upgrade counts them.
    conn.revert_last_migration(backend::db::MIGRATIONS).unwrap();
    insert(&mut conn, 250);
    backend::db::run_migrations(&mut conn).unwrap();
    assert_eq!(counted(&mut conn), 250);
    insert(&mut conn, 1000);
    let mut other = db.conn();
    insert(&mut other, 3);
    assert_eq!(counted(&mut conn), 1253);
    diesel::sql_query("DELETE FROM test_runs WHERE id % 10 = 0")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(counted(&mut conn), 1253 - 125);
    diesel::sql_query("BEGIN").execute(&mut conn).unwrap();
    insert(&mut conn, 7);
    diesel::sql_query("ROLLBACK").execute(&mut conn).unwrap();
    assert_eq!(
        counted(&mut conn),
        1128,
        "a rolled back insert counts nothing"
    );
    diesel::sql_query("TRUNCATE test_runs CASCADE")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(counted(&mut conn), 0);
    insert(&mut conn, 2);
    assert_eq!(counted(&mut conn), 2);
}

/// A session stuck on rows of the insights tables never holds up a run:
/// the recording gives up after a moment and leaves the run listed, a
/// finish with nothing to hand on (after a hand-off, or at shut-down) and
/// the reclaim of a lost run are written all the same, and the sweep
/// fails without waiting; once the session is gone, the sweep records
/// every listed run, once.
#[test]
fn a_session_stuck_on_insights_rows_delays_the_recording_and_nothing_else() {
    let (db, mut conn, first) = claimed_run("me");
    let with_a_case = || Outcome {
        cases: vec![case("test_quick.py::test_a")],
        ..succeeded()
    };
    let listed = |conn: &mut PgConnection| -> i64 {
        diesel::sql_query("SELECT count(*) AS n FROM runs_to_record")
            .get_result::<Count>(conn)
            .unwrap()
            .n
    };
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    // The first run makes the test's insights rows.
    let (written, none) = finish_handing_on(&mut conn, &first, &with_a_case());
    assert_eq!(
        (written, none.is_none(), listed(&mut conn)),
        (Written::Done, true, 0)
    );

    let mut stuck = db.conn();
    diesel::sql_query("BEGIN").execute(&mut stuck).unwrap();
    diesel::sql_query("SELECT 1 FROM test_period_stats FOR UPDATE")
        .execute(&mut stuck)
        .unwrap();
    queue_run(&mut conn, 10);
    let leases::Claimed::Run(second) = leases::claim(&mut conn, 10, claimer("me")).unwrap() else {
        panic!("the second run is claimed");
    };
    queue_run(&mut conn, 10);
    let started = Instant::now();
    let (written, third) = finish_handing_on(&mut conn, &second, &with_a_case());
    let third = third.expect("the third run is claimed");
    assert_eq!((written, listed(&mut conn)), (Written::Done, 1));
    assert!(leases::record_listed_run(&mut conn, second.run.id).is_err());
    let (written, none) = finish_handing_on(&mut conn, &third, &with_a_case());
    assert_eq!(
        written,
        Written::Done,
        "written though nothing could be recorded"
    );
    assert!(none.is_none());
    assert_eq!(listed(&mut conn), 2);
    assert!(leases::record_left_over_runs(&mut conn, 0).is_err());

    // A finish with no claim to follow (at shut-down) is written too.
    queue_run(&mut conn, 10);
    let leases::Claimed::Run(fourth) = leases::claim(&mut conn, 10, claimer("me")).unwrap() else {
        panic!("the fourth run is claimed");
    };
    let written = leases::finish(&mut conn, &fourth, 30, Stored::default(), &with_a_case());
    assert_eq!(written.unwrap(), Written::Done);
    assert_eq!(listed(&mut conn), 3);

    // A run whose instance is gone is taken back, and its token revoked.
    diesel::sql_query("INSERT INTO users (username, role) VALUES ('fay', 'member')")
        .execute(&mut conn)
        .unwrap();
    queue_run(&mut conn, 10);
    let with_tokens = leases::Claimer {
        run_tokens: Some(600),
        ..claimer("gone")
    };
    let leases::Claimed::Run(fifth) = leases::claim(&mut conn, 10, with_tokens).unwrap() else {
        panic!("the fifth run is claimed");
    };
    let token = fifth.token.as_ref().expect("the run's token").id;
    let appended = leases::append(
        &mut conn,
        fifth.run.id,
        fifth.fence,
        Stored::default(),
        "",
        &[case("test_quick.py::test_a")],
        &RunSummary::default(),
    );
    assert_eq!(appended.unwrap(), Written::Done);
    let taken = leases::reclaim(&mut conn, Some("gone"), "executor lost").unwrap();
    assert_eq!(taken.len(), 1, "taken back");
    assert_eq!(status_of(&mut conn, fifth.run.id), RunStatus::Error);
    assert_eq!(listed(&mut conn), 4);
    assert_eq!(
        backend::db::identity::token(&mut conn, token)
            .unwrap()
            .map(|t| t.id),
        None,
        "the lost run's token is revoked"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no lock waited for: {:?}",
        started.elapsed()
    );
    assert_eq!(status_of(&mut conn, third.run.id), RunStatus::Success);
    assert_eq!(status_of(&mut conn, fourth.run.id), RunStatus::Success);

    drop(stuck);
    assert_eq!(leases::record_left_over_runs(&mut conn, 0).unwrap(), 4);
    assert_eq!(leases::record_left_over_runs(&mut conn, 0).unwrap(), 0);
    assert_eq!(
        daily_duration_bytes(&mut conn),
        5 * 4,
        "each run's one duration, once"
    );
}

/// A finish that hands the environment on is done in one call of the
/// database; what it writes is what the statements one by one write: a
/// log tail of several chunks (cut between characters), cases in their
/// order with a node id too long to store whole, the counts, the report,
/// and the next run started under a new fence with its environment.
#[test]
fn a_finish_in_one_call_writes_all_the_long_way_would() {
    let (_db, mut conn, claim) = claimed_run("me");
    diesel::sql_query(
        "UPDATE environments SET variables = '{\"BASE_URL\": \"http://ten\"}' WHERE id = 10",
    )
    .execute(&mut conn)
    .unwrap();
    let next_id = queue_run(&mut conn, 10);
    let chunk = backend::db::logs::MAX_CHUNK_BYTES as usize;
    let log_tail = "é".repeat(chunk * 5 / 4) + "end\n";
    let long_nodeid = format!("a.py::test_{}", "x".repeat(5000));
    let mut failing = case("a.py::t2");
    failing.outcome = CaseOutcome::Failed;
    failing.message = Some("assert 1 == 2".into());
    let outcome = Outcome {
        status: RunStatus::Failed,
        reason: Some("some tests failed".into()),
        exit_code: Some(1),
        summary: RunSummary {
            total: Some(3),
            passed: Some(2),
            failed: Some(1),
            ..RunSummary::default()
        },
        cases: vec![case("a.py::t1"), failing, case(&long_nodeid)],
        log_tail: log_tail.clone(),
        junit_xml: Some("<testsuites/>".into()),
    };
    let (written, next) = finish_handing_on(&mut conn, &claim, &outcome);
    assert_eq!(written, Written::Done);

    let run = backend::db::runs::find(&mut conn, claim.run.id)
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.status_reason.as_deref(), Some("some tests failed"));
    assert_eq!(
        (run.exit_code, run.total, run.passed, run.failed),
        (Some(1), Some(3), Some(2), Some(1))
    );
    assert_eq!(run.log_bytes, log_tail.len() as i64);
    assert_eq!(run.case_count, 3);
    assert!(run.finished_at.is_some());
    assert_eq!(
        backend::db::logs::read_all(&mut conn, claim.run.id).unwrap(),
        log_tail
    );
    let cases = backend::db::runs::cases(&mut conn, claim.run.id).unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c.nodeid.as_str()).collect();
    assert_eq!(ids[..2], ["a.py::t1", "a.py::t2"]);
    assert_eq!(ids[2], backend::db::runs::stored_nodeid(&long_nodeid));
    assert_eq!(cases[1].message.as_deref(), Some("assert 1 == 2"));
    let report: i64 = diesel::sql_query("SELECT count(*) AS n FROM run_reports WHERE run_id = $1")
        .bind::<diesel::sql_types::BigInt, _>(claim.run.id)
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(report, 1);

    let next = next.expect("the next run is started");
    assert_eq!(next.run.id, next_id);
    assert_eq!(next.run.status, RunStatus::Running);
    assert!(next.fence > claim.fence);
    assert_eq!(next.environment.id, 10);
    assert_eq!(
        next.environment.variables,
        json!({"BASE_URL": "http://ten"})
    );
    assert_eq!(lease_on_10(&mut conn), Some((next_id, next.fence)));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
