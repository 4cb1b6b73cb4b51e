//! Environment health: a broken environment told from a flaky test, over
//! histories built for each case and checked against figures counted by
//! hand from the raw rows; the rebuild; the automatic maintenance rule.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text, Timestamptz};
use serde_json::{json, Value};

use crate::helpers::*;

struct Case {
    nodeid: &'static str,
    outcome: &'static str,
}

struct Seeded {
    id: i64,
    environment_id: i32,
    status: &'static str,
    finished_at: DateTime<Utc>,
    cases: Vec<Case>,
}

const STABLE: &str = "h/test_core.py::test_stable";
const NETWORK: &str = "h/test_core.py::test_needs_network";
const DISK: &str = "h/test_core.py::test_disk";
const COIN: &str = "h/test_core.py::test_coin";

/// Which kinds of trouble a history holds.
#[derive(Clone, Copy)]
struct Trouble {
    /// Environment 3 breaks two tests that pass everywhere else.
    bad_environment: bool,
    /// One test fails every third run, wherever it runs.
    flaky_test: bool,
}

const BAD: i32 = 3;

/// The cases of run number `k` on `environment_id`.
fn cases_of(trouble: Trouble, k: i64, environment_id: i32) -> Vec<Case> {
    let bad_here = trouble.bad_environment && environment_id == BAD;
    let mut cases = vec![
        Case {
            nodeid: STABLE,
            outcome: "passed",
        },
        Case {
            nodeid: NETWORK,
            outcome: match (bad_here, k % 4) {
                (false, _) => "passed",
                (true, 0) => "error",
                (true, _) => "failed",
            },
        },
        Case {
            nodeid: DISK,
            outcome: if bad_here && k % 2 == 0 {
                "failed"
            } else {
                "passed"
            },
        },
    ];
    if trouble.flaky_test {
        cases.push(Case {
            nodeid: COIN,
            outcome: if k % 3 == 0 { "failed" } else { "passed" },
        });
    }
    cases
}

/// Seeds 400 finished runs over five environments straight into the
/// database, oldest first, each recorded as the service records a
/// finish. Every 37th run is an error without cases (a lost executor)
/// and every 41st is cancelled after its cases.
fn seed(conn: &mut PgConnection, trouble: Trouble) -> Vec<Seeded> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = Timestamptz)]
        now: DateTime<Utc>,
    }
    let now = diesel::sql_query("SELECT now() AS now")
        .get_result::<Now>(conn)
        .unwrap()
        .now;
    let mut runs = Vec::new();
    // One run every 12 min 53 s: about three and a half days, with no run
    // within 40 s of the edge of a window of 1, 2 or 3 days.
    for k in (0..400i64).rev() {
        let finished_at = now - chrono::Duration::seconds(k * 773 + 11);
        let environment_id = (k % 5) as i32 + 1;
        let (status, cases) = if k % 37 == 5 {
            ("error", vec![])
        } else {
            let cases = cases_of(trouble, k, environment_id);
            let status = if k % 41 == 7 {
                "cancelled"
            } else if cases.iter().any(|c| c.outcome != "passed") {
                "failed"
            } else {
                "success"
            };
            (status, cases)
        };
        let id = insert_run(conn, environment_id, status, finished_at, &cases);
        runs.push(Seeded {
            id,
            environment_id,
            status,
            finished_at,
            cases,
        });
    }
    runs
}

fn insert_run(
    conn: &mut PgConnection,
    environment_id: i32,
    status: &str,
    finished_at: DateTime<Utc>,
    cases: &[Case],
) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let id = diesel::sql_query(
        "INSERT INTO test_runs (username, environment_id, paths, status, created_at, \
                                started_at, finished_at) \
         VALUES ('seed', $1, '[]', $2, $3, $3, $3) RETURNING id",
    )
    .bind::<Integer, _>(environment_id)
    .bind::<Text, _>(status)
    .bind::<Timestamptz, _>(finished_at)
    .get_result::<Id>(conn)
    .unwrap()
    .id;
    diesel::sql_query(
        "INSERT INTO run_cases (run_id, nodeid, outcome, duration_ms) \
         SELECT $1, unnest($2::text[]), unnest($3::text[]), 1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Array<Text>, _>(cases.iter().map(|c| c.nodeid).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(cases.iter().map(|c| c.outcome).collect::<Vec<_>>())
    .execute(conn)
    .unwrap();
    diesel::sql_query("SELECT record_test_results($1), record_environment_results($1)")
        .bind::<BigInt, _>(id)
        .execute(conn)
        .unwrap();
    id
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        one.into()
    } else {
        many.into()
    }
}

/// Environment health over the runs finished since `start`, counted the
/// plain way from every run and case: what the service must answer.
fn expected_health(runs: &[Seeded], start: DateTime<Utc>, days: i64) -> Value {
    let mut recent: Vec<&Seeded> = runs.iter().filter(|r| r.finished_at >= start).collect();
    recent.sort_by_key(|r| (r.finished_at, r.id));
    // Per environment: runs, failed runs, the streak at the end.
    let mut run_figures: BTreeMap<i32, (i64, i64, i64)> = BTreeMap::new();
    // Per (environment, test): passes and failures.
    let mut results: BTreeMap<(i32, &str), (i64, i64)> = BTreeMap::new();
    for run in &recent {
        if run.status != "cancelled" {
            let entry = run_figures.entry(run.environment_id).or_default();
            entry.0 += 1;
            if run.status == "success" {
                entry.2 = 0;
            } else {
                entry.1 += 1;
                entry.2 += 1;
            }
        }
        for case in &run.cases {
            let entry = results
                .entry((run.environment_id, case.nodeid))
                .or_default();
            match case.outcome {
                "passed" => entry.0 += 1,
                "failed" | "error" => entry.1 += 1,
                _ => {}
            }
        }
    }
    let envs_where = |nodeid: &str, passed: bool| -> BTreeSet<i32> {
        results
            .iter()
            .filter(|((_, n), (p, f))| *n == nodeid && if passed { *p > 0 } else { *f > 0 })
            .map(|((e, _), _)| *e)
            .collect()
    };
    let succeeding: BTreeSet<i32> = run_figures
        .iter()
        .filter(|(_, (runs, _, streak))| *runs > 0 && *streak == 0)
        .map(|(e, _)| *e)
        .collect();
    let mut all = Vec::new();
    for environment_id in 1..=100 {
        let (runs, failed_runs, streak) = run_figures
            .get(&environment_id)
            .copied()
            .unwrap_or_default();
        let mut failed_results = 0;
        let mut only_here = 0;
        let mut also_elsewhere = 0;
        let mut listed = Vec::new();
        for ((e, nodeid), (_, failures)) in &results {
            if *e != environment_id || *failures == 0 {
                continue;
            }
            let passed_elsewhere = envs_where(nodeid, true)
                .iter()
                .filter(|o| **o != *e)
                .count() as i64;
            let failed_elsewhere = envs_where(nodeid, false)
                .iter()
                .filter(|o| **o != *e)
                .count() as i64;
            failed_results += failures;
            if failed_elsewhere > 0 {
                also_elsewhere += failures;
            }
            if passed_elsewhere > 0 {
                if failed_elsewhere == 0 {
                    only_here += failures;
                }
                listed.push((
                    *failures,
                    nodeid.to_string(),
                    passed_elsewhere,
                    failed_elsewhere,
                ));
            }
        }
        listed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        listed.truncate(20);
        let failure_rate = if runs > 0 {
            failed_runs as f64 / runs as f64
        } else {
            0.0
        };
        let only_share = if failed_results > 0 {
            only_here as f64 / failed_results as f64
        } else {
            0.0
        };
        let streak_share = streak.min(5) as f64 / 5.0;
        let mostly_here = only_here >= 3 && 2 * only_here > failed_results;
        let streak_alone = streak >= 5 && succeeding.iter().any(|o| *o != environment_id);
        let suspect = mostly_here || streak_alone;
        let mut score = (1.0 - 0.4 * failure_rate - 0.4 * only_share - 0.2 * streak_share).max(0.0);
        if suspect {
            score = score.min(0.5);
        }
        let score = (score * 1000.0).round() / 1000.0;
        let mut reasons = vec![if runs == 0 {
            format!(
                "no finished runs in the last {days} {}",
                plural(days, "day", "days")
            )
        } else if failed_runs == 0 {
            format!("{runs} {}, none failed", plural(runs, "run", "runs"))
        } else {
            format!("{failed_runs} of {runs} runs failed or errored")
        }];
        if only_here > 0 {
            reasons.push(format!(
                "{only_here} of {failed_results} failures are tests that pass on other environments and fail on no other"
            ));
        }
        if also_elsewhere > 0 {
            reasons.push(format!(
                "{also_elsewhere} of {failed_results} failures are tests that fail on other environments too"
            ));
        }
        if streak >= 2 {
            let mut said = if streak == runs {
                format!("all {runs} runs failed")
            } else {
                format!("last {streak} runs failed")
            };
            if streak_alone {
                said.push_str(" while another environment's latest run succeeded");
            }
            reasons.push(said);
        }
        all.push(json!({
            "environment_id": environment_id,
            "runs": runs,
            "failed_runs": failed_runs,
            "failure_rate": failure_rate,
            "failure_streak": streak,
            "failed_results": failed_results,
            "failures_only_here": only_here,
            "score": score,
            "suspect": suspect,
            "reasons": reasons,
            "env_specific_failures": listed.into_iter().map(|(f, nodeid, p, o)| json!({
                "nodeid": nodeid, "failed_here": f, "passed_elsewhere": p, "failed_elsewhere": o,
            })).collect::<Vec<_>>(),
        }));
    }
    all.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                v["score"].as_f64().unwrap(),
                !v["suspect"].as_bool().unwrap(),
                -v["failure_rate"].as_f64().unwrap(),
                v["environment_id"].as_i64().unwrap(),
            )
        };
        key(a).partial_cmp(&key(b)).unwrap()
    });
    Value::Array(all)
}

/// Fractions to twelve decimals: JSON's text form of a float may come
/// back an ulp apart.
fn comparable(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            json!((n.as_f64().unwrap() * 1e12).round() / 1e12)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(comparable).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| (k, comparable(v)))
                .collect(),
        ),
        other => other,
    }
}

/// Checks the service's health and insights against the raw rows for
/// several windows, as recorded run by run and again after a rebuild.
fn check_against_raw_rows(app: &TestApp, conn: &mut PgConnection, runs: &[Seeded]) -> Value {
    let check = |label: &str| {
        for days in [1, 2, 3, 7] {
            let start = Utc::now() - chrono::Duration::days(days);
            let (status, answer) = app.get(&format!("/api/insights/environments?days={days}"));
            assert_eq!(status, 200, "{answer}");
            let (answer, expected) = (
                comparable(answer),
                comparable(expected_health(runs, start, days)),
            );
            if answer != expected {
                let differing: Vec<(&Value, &Value)> = answer
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(expected.as_array().unwrap())
                    .filter(|(a, e)| a != e)
                    .take(3)
                    .collect();
                panic!("{label}, {days} days: answer and expected differ: {differing:#?}");
            }
        }
    };
    check("recorded run by run");
    diesel::sql_query("SELECT rebuild_environment_health()")
        .execute(conn)
        .unwrap();
    check("rebuilt from the raw rows");
    app.get("/api/insights/environments?days=7").1
}

/// One environment's entry in the health answer.
pub(crate) fn of(health: &Value, environment_id: i32) -> &Value {
    health
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["environment_id"] == environment_id)
        .unwrap()
}

fn suspects(health: &Value) -> Vec<i64> {
    health
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["suspect"] == true)
        .map(|h| h["environment_id"].as_i64().unwrap())
        .collect()
}

fn flaky<'a>(insights: &'a Value, nodeid: &str) -> Option<&'a Value> {
    insights["flaky"]
        .as_array()?
        .iter()
        .find(|t| t["nodeid"] == nodeid)
}

#[test]
fn one_bad_environment_is_suspect_and_ranked_least_healthy() {
    let db = TestDb::create();
    let app = TestApp::spawn_on(db.clone(), &TestsDir::with(&[]), &[]);
    let mut conn = db.conn();
    let trouble = Trouble {
        bad_environment: true,
        flaky_test: false,
    };
    let runs = seed(&mut conn, trouble);
    let health = check_against_raw_rows(&app, &mut conn, &runs);

    assert_eq!(suspects(&health), [3], "{health}");
    assert_eq!(health[0]["environment_id"], BAD, "least healthy first");
    let bad = of(&health, BAD);
    let listed: Vec<&str> = bad["env_specific_failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["nodeid"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [NETWORK, DISK], "the most failing first");
    assert_eq!(bad["env_specific_failures"][0]["passed_elsewhere"], 4);
    assert_eq!(bad["env_specific_failures"][0]["failed_elsewhere"], 0);
    assert!(bad["score"].as_f64().unwrap() <= 0.5);
    let reasons = bad["reasons"].to_string();
    assert!(
        reasons.contains("tests that pass on other environments"),
        "{reasons}"
    );
    assert!(reasons.contains("runs failed"), "{reasons}");
    for healthy in [1, 2, 4, 5] {
        let h = of(&health, healthy);
        assert_eq!(h["env_specific_failures"], json!([]), "{h}");
        assert!(h["score"].as_f64().unwrap() > 0.9, "{h}");
    }
    assert_eq!(of(&health, 60)["runs"], 0);
    assert_eq!(of(&health, 60)["score"], 1.0);
}

#[test]
fn a_test_flaky_everywhere_makes_no_environment_suspect() {
    let db = TestDb::create();
    let app = TestApp::spawn_on(db.clone(), &TestsDir::with(&[]), &[]);
    let mut conn = db.conn();
    let trouble = Trouble {
        bad_environment: false,
        flaky_test: true,
    };
    let runs = seed(&mut conn, trouble);
    let health = check_against_raw_rows(&app, &mut conn, &runs);

    assert_eq!(suspects(&health), Vec::<i64>::new(), "{health}");
    for environment_id in 1..=5 {
        let h = of(&health, environment_id);
        assert_eq!(h["failures_only_here"], 0, "{h}");
        // Listed (it passes elsewhere), but it fails elsewhere too.
        assert_eq!(h["env_specific_failures"][0]["nodeid"], COIN);
        assert_eq!(h["env_specific_failures"][0]["failed_elsewhere"], 4);
        assert!(h["reasons"]
            .to_string()
            .contains("fail on other environments too"));
    }
    let (_, insights) = app.get("/api/insights?days=7");
    let coin = flaky(&insights, COIN).expect("the coin test is flaky");
    assert!(coin["flips"].as_i64().unwrap() > 0);
    assert_eq!(coin["flips_on_suspect_environments"], 0);
    assert_eq!(coin["failures_on_suspect_environments"], 0);
}

#[test]
fn a_bad_environment_and_a_flaky_test_at_once_are_told_apart() {
    let db = TestDb::create();
    let app = TestApp::spawn_on(db.clone(), &TestsDir::with(&[]), &[]);
    let mut conn = db.conn();
    let trouble = Trouble {
        bad_environment: true,
        flaky_test: true,
    };
    let runs = seed(&mut conn, trouble);
    let health = check_against_raw_rows(&app, &mut conn, &runs);

    assert_eq!(suspects(&health), [3], "{health}");
    let bad = of(&health, BAD);
    assert!(
        bad["failed_results"].as_i64().unwrap() > bad["failures_only_here"].as_i64().unwrap(),
        "the coin test's failures there are not the environment's: {bad}"
    );

    // The flaky test's flips on environment 3 are left out of its flips
    // and said apart; its failures there are counted.
    let start = Utc::now() - chrono::Duration::days(7);
    let (mut flips, mut flips_on_bad) = (0, 0);
    let mut last: BTreeMap<i32, bool> = BTreeMap::new();
    let mut failures_on_bad = 0;
    for run in runs.iter().filter(|r| r.finished_at >= start) {
        for case in run.cases.iter().filter(|c| c.nodeid == COIN) {
            let passed = case.outcome == "passed";
            if let Some(before) = last.insert(run.environment_id, passed) {
                if before != passed {
                    if run.environment_id == BAD {
                        flips_on_bad += 1;
                    } else {
                        flips += 1;
                    }
                }
            }
            if !passed && run.environment_id == BAD {
                failures_on_bad += 1;
            }
        }
    }
    let (_, insights) = app.get("/api/insights?days=7");
    let coin = flaky(&insights, COIN).expect("the coin test is flaky");
    assert_eq!(coin["flips"], flips, "{coin}");
    assert_eq!(
        coin["flips_on_suspect_environments"], flips_on_bad,
        "{coin}"
    );
    assert_eq!(coin["failures_on_suspect_environments"], failures_on_bad);
    assert_eq!(coin["suspect_environment_ids"], json!([BAD]));
    assert!(flips_on_bad > 0 && failures_on_bad > 0);

    // A failed run on the bad environment: where did its tests pass?
    let last_bad = runs
        .iter()
        .rev()
        .find(|r| {
            r.environment_id == BAD
                && r.status == "failed"
                && r.cases
                    .iter()
                    .any(|c| c.nodeid == DISK && c.outcome == "failed")
        })
        .unwrap();
    let (status, elsewhere) = app.get(&format!("/api/runs/{}/passed-elsewhere", last_bad.id));
    assert_eq!(status, 200, "{elsewhere}");
    let entry = elsewhere
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["nodeid"] == DISK)
        .expect("the failed test is listed");
    assert_eq!(entry["passed_elsewhere"], 4);
    assert_eq!(entry["environment_ids"], json!([1, 2, 4, 5]));
    assert!(elsewhere
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["nodeid"] != STABLE));
}

#[test]
fn bad_windows_and_unknown_runs_are_refused() {
    let app = TestApp::spawn(&TestsDir::with(&[]), &[]);
    for bad in [
        "/api/insights/environments?days=0",
        "/api/insights/environments?days=367",
        "/api/insights/environments?days=x",
        "/api/runs/1/passed-elsewhere?days=0",
    ] {
        assert_error(&app.get(bad), 400, "bad_request");
    }
    assert_error(&app.get("/api/runs/999/passed-elsewhere"), 404, "not_found");
    let (status, health) = app.get("/api/insights/environments");
    assert_eq!(status, 200);
    assert_eq!(health.as_array().unwrap().len(), 100, "every environment");
    assert!(health
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["score"] == 1.0 && h["suspect"] == false));
}

const ENV_SENSITIVE: &str = r#"
import os

def test_reaches_the_service():
    assert os.environ["TEST_ENV_ID"] != "7", "environment 7 cannot reach the service"

def test_plain():
    pass
"#;

#[test]
fn real_runs_keep_the_figures_at_finish() {
    let tests = TestsDir::with(&[("net/test_reach.py", ENV_SENSITIVE)]);
    let app = TestApp::spawn(&tests, &[]);
    let bad = app.create_run("ann", 7, &["net/test_reach.py"]);
    assert_eq!(app.wait_finished(bad, SECS_30)["status"], "failed");
    let good = app.create_run("ann", 8, &["net/test_reach.py"]);
    assert_eq!(app.wait_finished(good, SECS_30)["status"], "success");

    let (status, health) = app.get("/api/insights/environments?days=1");
    assert_eq!(status, 200, "{health}");
    assert_eq!(health[0]["environment_id"], 7, "{health}");
    let seven = of(&health, 7);
    assert_eq!(seven["runs"], 1);
    assert_eq!(seven["failure_rate"], 1.0);
    assert_eq!(
        seven["env_specific_failures"],
        json!([{"nodeid": "net/test_reach.py::test_reaches_the_service",
                "failed_here": 1, "passed_elsewhere": 1, "failed_elsewhere": 0}])
    );
    assert_eq!(of(&health, 8)["failure_rate"], 0.0);
    let (_, elsewhere) = app.get(&format!("/api/runs/{bad}/passed-elsewhere"));
    assert_eq!(
        elsewhere,
        json!([{"nodeid": "net/test_reach.py::test_reaches_the_service",
                "passed_elsewhere": 1, "environment_ids": [8]}])
    );
}

#[derive(QueryableByName)]
struct Maintenance {
    #[diesel(sql_type = Nullable<Text>)]
    maintenance_reason: Option<String>,
}

fn maintenance_of(conn: &mut PgConnection, id: i32) -> Option<String> {
    diesel::sql_query("SELECT maintenance_reason FROM environments WHERE id = $1")
        .bind::<Integer, _>(id)
        .get_result::<Maintenance>(conn)
        .unwrap()
        .maintenance_reason
}

#[test]
fn the_rule_puts_a_suspect_environment_into_maintenance_once_per_evidence() {
    let db = TestDb::create();
    let tests = TestsDir::with(&[]);
    // The schema first, from an instance without the rule.
    drop(TestApp::spawn_on(db.clone(), &tests, &[]));
    let mut conn = db.conn();
    let trouble = Trouble {
        bad_environment: true,
        flaky_test: true,
    };
    seed(&mut conn, trouble);
    // Two instances with the rule, on one database.
    let settings = [
        ("HEALTH_AUTO_MAINTENANCE", "on"),
        ("HEALTH_CHECK_SECS", "1"),
    ];
    let app = TestApp::spawn_on(db.clone(), &tests, &settings);
    let _other = TestApp::spawn_on(db.clone(), &tests, &settings);

    eventually(
        scaled(SECS_30),
        "environment 3 goes into maintenance",
        || maintenance_of(&mut db.conn(), BAD).is_some(),
    );
    let reason = maintenance_of(&mut conn, BAD).unwrap();
    assert!(
        reason.starts_with("automatic: environment health is suspect"),
        "{reason}"
    );
    assert!(
        reason.contains("tests that pass on other environments"),
        "{reason}"
    );
    let (_, environment) = app.get("/api/environments/3");
    assert_eq!(environment["maintenance"]["reason"], reason.as_str());
    for healthy in [1, 2, 4, 5] {
        assert_eq!(maintenance_of(&mut conn, healthy), None);
    }
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let actions = diesel::sql_query("SELECT count(*) AS n FROM environment_health_actions")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(actions, 1, "acted once, by one of the two instances");

    // An admin ends it: not applied again without new evidence.
    let (status, _) = app.delete("/api/environments/3/maintenance");
    assert_eq!(status, 200);
    std::thread::sleep(scaled(std::time::Duration::from_secs(4)));
    assert_eq!(maintenance_of(&mut conn, BAD), None, "no new evidence");

    // A new failed run there is new evidence.
    let cases = cases_of(trouble, 2, BAD);
    insert_run(&mut conn, BAD, "failed", Utc::now(), &cases);
    eventually(
        scaled(SECS_30),
        "environment 3 goes back into maintenance",
        || maintenance_of(&mut db.conn(), BAD).is_some(),
    );
}
