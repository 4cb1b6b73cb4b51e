//! Test history, flaky and failing tests.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};
use serde_json::{json, Value};

use crate::helpers::*;

const SERIES: &str = r#"
import os
HERE = os.path.dirname(os.path.abspath(__file__))
COUNTER = os.path.join(HERE, "counter")

def test_alternates():
    n = int(open(COUNTER).read()) if os.path.exists(COUNTER) else 0
    with open(COUNTER, "w") as f:
        f.write(str(n + 1))
    assert n % 2 == 0, f"odd round {n}"

def test_always_fails():
    assert False, "broken for good"

def test_always_passes():
    pass
"#;

fn named<'a>(list: &'a Value, nodeid: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|item| item["nodeid"] == nodeid)
}

#[test]
fn alternating_tests_are_flaky_and_always_failing_ones_are_failing() {
    let tests = TestsDir::with(&[("suite/test_series.py", SERIES)]);
    let app = TestApp::spawn(&tests, &[]);
    let ids: Vec<i64> = (0..5)
        .map(|_| {
            let id = app.create_run("wes", 40, &["suite/test_series.py"]);
            app.wait_finished(id, SECS_30);
            id
        })
        .collect();

    let (status, insights) = app.get("/api/insights?days=7");
    assert_eq!(status, 200, "{insights}");
    let alternates = "suite/test_series.py::test_alternates";
    let always = "suite/test_series.py::test_always_fails";
    let flaky = named(&insights["flaky"], alternates).expect("the alternating test is flaky");
    assert_eq!(flaky["flips"], 4, "P F P F P flips four times");
    assert!(flaky["last_flip_at"].is_string());
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(flaky["run_ids"], json!(newest_first));
    assert!(
        named(&insights["flaky"], always).is_none(),
        "always failing is not flaky"
    );
    assert!(named(
        &insights["flaky"],
        "suite/test_series.py::test_always_passes"
    )
    .is_none());

    let failing = named(&insights["failing"], always).expect("always failing is failing");
    assert_eq!(failing["failures"], 5);
    assert_eq!(failing["run_ids"], json!(newest_first));
    assert_eq!(
        insights["failing"][0]["nodeid"], always,
        "the most failing first"
    );
    assert_eq!(
        named(&insights["failing"], alternates).map(|f| f["failures"].clone()),
        Some(json!(2))
    );
    let slow = named(
        &insights["slowest"],
        "suite/test_series.py::test_always_passes",
    )
    .expect("listed");
    assert!(slow["median_ms"].as_i64().is_some());

    let (status, history) = app.get(&format!("/api/tests/history?nodeid={alternates}"));
    assert_eq!(status, 200);
    let outcomes: Vec<&str> = history
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        ["passed", "failed", "passed", "failed", "passed"],
        "newest first"
    );
    assert_eq!(history[0]["run_id"], ids[4]);
    assert_eq!(history[0]["environment_id"], 40);
    assert!(history[0]["finished_at"].is_string());
    assert!(history[0]["duration_ms"].is_i64());

    let (_, file) = app.get("/api/tests/history?path=suite/test_series.py&limit=2");
    let items = file.as_array().expect("a list");
    assert_eq!(
        items.len(),
        6,
        "two results for each of three tests: {file}"
    );
    assert!(items
        .iter()
        .all(|i| i["run_id"] == ids[4] || i["run_id"] == ids[3]));
    assert!(items.iter().any(|i| i["nodeid"] == always));

    let (_, none) = app.get("/api/tests/history?nodeid=suite/test_series.py::nothing");
    assert_eq!(none, json!([]));
    for bad in [
        "/api/tests/history",
        "/api/tests/history?nodeid=a&path=b",
        "/api/tests/history?nodeid=a&limit=0",
        "/api/insights?days=0",
        "/api/insights?days=x",
    ] {
        assert_error(&app.get(bad), 400, "bad_request");
    }
}

/// One case of a seeded run.
struct SeededCase {
    nodeid: &'static str,
    outcome: &'static str,
    duration_ms: i64,
}

struct SeededRun {
    id: i64,
    environment_id: i32,
    finished_at: DateTime<Utc>,
    cases: Vec<SeededCase>,
}

/// A small deterministic generator, so a failure can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

/// Seeds finished runs straight into the database, oldest first, each
/// recorded as the service records a finish.
fn seed_history(conn: &mut PgConnection) -> Vec<SeededRun> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = Timestamptz)]
        now: DateTime<Utc>,
    }
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let now = diesel::sql_query("SELECT now() AS now")
        .get_result::<Now>(conn)
        .unwrap()
        .now;
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut runs = Vec::new();
    // 500 runs, one every 10 min 13 s: about three and a half days, with
    // no run within 40 s of the edge of a window of 1, 2 or 3 days.
    for k in (0..500i64).rev() {
        let finished_at = now - chrono::Duration::seconds(k * 613 + 7);
        let environment_id = 1 + dice.roll(3) as i32;
        let mut cases = vec![
            SeededCase {
                nodeid: "seed/test_a.py::test_stable",
                outcome: "passed",
                duration_ms: 5 + dice.roll(10) as i64,
            },
            SeededCase {
                nodeid: "seed/test_a.py::test_coin",
                outcome: ["passed", "failed"][dice.roll(2) as usize],
                duration_ms: dice.roll(2000) as i64,
            },
            SeededCase {
                nodeid: "seed/test_a.py::test_mostly_broken",
                outcome: ["failed", "failed", "error", "failed", "passed"][dice.roll(5) as usize],
                duration_ms: 100 + dice.roll(50) as i64,
            },
            SeededCase {
                nodeid: "seed/test_b.py::test_sometimes_skipped",
                outcome: ["skipped", "passed", "skipped", "failed"][dice.roll(4) as usize],
                duration_ms: 3000 + dice.roll(3000) as i64,
            },
        ];
        if dice.roll(3) == 0 {
            cases.push(SeededCase {
                nodeid: "seed/test_b.py::test_now_and_then",
                outcome: ["passed", "error"][dice.roll(2) as usize],
                duration_ms: 700 + dice.roll(300) as i64,
            });
        }
        let id = diesel::sql_query(
            "INSERT INTO test_runs (username, environment_id, paths, status, created_at, \
                                    started_at, finished_at) \
             VALUES ('seed', $1, '[]', 'failed', $2, $2, $2) RETURNING id",
        )
        .bind::<Integer, _>(environment_id)
        .bind::<Timestamptz, _>(finished_at)
        .get_result::<Id>(conn)
        .unwrap()
        .id;
        diesel::sql_query(
            "INSERT INTO run_cases (run_id, nodeid, outcome, duration_ms) \
             SELECT $1, unnest($2::text[]), unnest($3::text[]), unnest($4::bigint[])",
        )
        .bind::<BigInt, _>(id)
        .bind::<Array<Text>, _>(cases.iter().map(|c| c.nodeid).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(cases.iter().map(|c| c.outcome).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(cases.iter().map(|c| c.duration_ms).collect::<Vec<_>>())
        .execute(conn)
        .unwrap();
        diesel::sql_query("SELECT record_test_results($1)")
            .bind::<BigInt, _>(id)
            .execute(conn)
            .unwrap();
        runs.push(SeededRun {
            id,
            environment_id,
            finished_at,
            cases,
        });
    }
    runs
}

fn newest_50(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let set: BTreeSet<i64> = ids.into_iter().collect();
    set.into_iter().rev().take(50).collect()
}

/// The insights over the runs finished since `start`, worked out the
/// plain way from every case: what the service must answer.
fn expected_insights(runs: &[SeededRun], start: DateTime<Utc>) -> Value {
    let recent: Vec<&SeededRun> = runs.iter().filter(|r| r.finished_at >= start).collect();
    // Flips: consecutive pass/fail results of a test on one environment.
    let mut last: BTreeMap<(&str, i32), (bool, i64)> = BTreeMap::new();
    let mut flips: BTreeMap<&str, (i64, DateTime<Utc>, Vec<i64>)> = BTreeMap::new();
    let mut failures: BTreeMap<&str, (i64, Vec<i64>)> = BTreeMap::new();
    let mut durations: BTreeMap<&str, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for run in &recent {
        for case in &run.cases {
            if case.outcome != "skipped" {
                let passed = case.outcome == "passed";
                let key = (case.nodeid, run.environment_id);
                if let Some((before, before_run)) = last.insert(key, (passed, run.id)) {
                    if before != passed {
                        let entry =
                            flips
                                .entry(case.nodeid)
                                .or_insert((0, run.finished_at, vec![]));
                        entry.0 += 1;
                        entry.1 = entry.1.max(run.finished_at);
                        entry.2.extend([run.id, before_run]);
                    }
                }
                let timing = durations.entry(case.nodeid).or_default();
                timing.0.push(case.duration_ms);
                timing.1.push(run.id);
            }
            if case.outcome == "failed" || case.outcome == "error" {
                let entry = failures.entry(case.nodeid).or_default();
                entry.0 += 1;
                entry.1.push(run.id);
            }
        }
    }
    let mut flaky: Vec<_> = flips.into_iter().collect();
    flaky.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then(b.1 .1.cmp(&a.1 .1))
            .then(a.0.cmp(b.0))
    });
    let mut failing: Vec<_> = failures.into_iter().collect();
    failing.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    let mut slowest: Vec<(&str, i64, Vec<i64>)> = durations
        .into_iter()
        .map(|(nodeid, (mut ms, ids))| {
            ms.sort_unstable();
            (nodeid, ms[(ms.len() - 1) / 2], ids)
        })
        .collect();
    slowest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    json!({
        "flaky": flaky.into_iter().map(|(nodeid, (flips, at, ids))| json!({
            "nodeid": nodeid, "flips": flips, "last_flip_at": at.timestamp_micros(),
            "run_ids": newest_50(ids),
            // Every environment fails every test alike: none is suspect.
            "flips_on_suspect_environments": 0,
            "failures_on_suspect_environments": 0,
            "suspect_environment_ids": [],
        })).collect::<Vec<_>>(),
        "failing": failing.into_iter().map(|(nodeid, (count, ids))| json!({
            "nodeid": nodeid, "failures": count, "run_ids": newest_50(ids),
        })).collect::<Vec<_>>(),
        "slowest": slowest.into_iter().map(|(nodeid, median, ids)| json!({
            "nodeid": nodeid, "median_ms": median, "run_ids": newest_50(ids),
        })).collect::<Vec<_>>(),
    })
}

/// The service's answer with `last_flip_at` as microseconds, comparable
/// with [`expected_insights`].
fn comparable(mut insights: Value) -> Value {
    for flaky in insights["flaky"].as_array_mut().unwrap() {
        let at: DateTime<Utc> = flaky["last_flip_at"].as_str().unwrap().parse().unwrap();
        flaky["last_flip_at"] = json!(at.timestamp_micros());
    }
    insights
}

#[test]
fn insights_over_a_seeded_history_match_every_case_counted_by_hand() {
    let db = TestDb::create();
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn_on(db.clone(), &tests, &[]);
    let mut conn = db.conn();
    let runs = seed_history(&mut conn);

    let check = |label: &str| {
        for days in [1, 2, 3, 7] {
            let start = Utc::now() - chrono::Duration::days(days);
            let (status, answer) = app.get(&format!("/api/insights?days={days}"));
            assert_eq!(status, 200, "{answer}");
            assert_eq!(
                comparable(answer),
                expected_insights(&runs, start),
                "{label}, {days} days"
            );
        }
    };
    check("recorded run by run");
    diesel::sql_query("SELECT rebuild_test_insights()")
        .execute(&mut conn)
        .unwrap();
    check("rebuilt from the case rows");
}

#[test]
fn a_pool_with_room_for_one_expensive_read_answers_the_same_insights_one_half_after_the_other() {
    let tests = TestsDir::with(&[("suite/test_series.py", SERIES)]);
    let app = TestApp::spawn(&tests, &[("DB_POOL_SIZE", "2")]);
    for _ in 0..3 {
        let id = app.create_run("wes", 41, &["suite/test_series.py"]);
        app.wait_finished(id, SECS_30);
    }
    let (status, insights) = app.get("/api/insights?days=7");
    assert_eq!(status, 200, "{insights}");
    let flaky = named(&insights["flaky"], "suite/test_series.py::test_alternates")
        .expect("the alternating test is flaky");
    assert_eq!(flaky["flips"], 2, "P F P flips twice");
    let failing = named(
        &insights["failing"],
        "suite/test_series.py::test_always_fails",
    )
    .expect("the broken test is failing");
    assert_eq!(failing["failures"], 3);
    assert_eq!(insights["slowest"].as_array().map(Vec::len), Some(3));
}
