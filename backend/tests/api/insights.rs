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
    nodeid: String,
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

/// Runs queued at once hand their environment on to each other: each is
/// recorded after its finish, by the run after it, and all of them count
/// once the queue is done, in insights and in environment health alike.
#[test]
fn runs_handed_on_from_count_once_the_queue_is_done() {
    let tests = TestsDir::with(&[("suite/test_series.py", SERIES)]);
    let app = TestApp::spawn(&tests, &[]);
    let ids: Vec<i64> = (0..5)
        .map(|_| app.create_run("wes", 41, &["suite/test_series.py"]))
        .collect();
    for id in &ids {
        app.wait_finished(*id, SECS_30);
    }

    let (status, insights) = app.get("/api/insights?days=7");
    assert_eq!(status, 200, "{insights}");
    let flaky = named(&insights["flaky"], "suite/test_series.py::test_alternates")
        .expect("the alternating test is flaky");
    assert_eq!(flaky["flips"], 4, "P F P F P flips four times");
    let failing = named(
        &insights["failing"],
        "suite/test_series.py::test_always_fails",
    )
    .expect("always failing is failing");
    assert_eq!(failing["failures"], 5, "each run counted once");
    let (status, health) = app.get("/api/insights/environments?days=7");
    assert_eq!(status, 200, "{health}");
    let here = crate::health::of(&health, 41);
    assert_eq!(here["runs"], 5, "{here}");
    assert_eq!(here["failed_runs"], 5, "{here}");
}

/// Seeds finished runs straight into the database, oldest first, each
/// recorded as the service records a finish.
fn seed_history(conn: &mut PgConnection) -> Vec<SeededRun> {
    let now = db_now(conn);
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let mut runs = Vec::new();
    // 500 runs, one every 10 min 13 s: about three and a half days, with
    // no run within 40 s of the edge of a window of 1, 2 or 3 days.
    for k in (0..500i64).rev() {
        let finished_at = now - chrono::Duration::seconds(k * 613 + 7);
        let environment_id = 1 + dice.roll(3) as i32;
        let mut cases = vec![
            SeededCase {
                nodeid: "seed/test_a.py::test_stable".into(),
                outcome: "passed",
                duration_ms: 5 + dice.roll(10) as i64,
            },
            SeededCase {
                nodeid: "seed/test_a.py::test_coin".into(),
                outcome: ["passed", "failed"][dice.roll(2) as usize],
                duration_ms: dice.roll(2000) as i64,
            },
            SeededCase {
                nodeid: "seed/test_a.py::test_mostly_broken".into(),
                outcome: ["failed", "failed", "error", "failed", "passed"][dice.roll(5) as usize],
                duration_ms: 100 + dice.roll(50) as i64,
            },
            SeededCase {
                nodeid: "seed/test_b.py::test_sometimes_skipped".into(),
                outcome: ["skipped", "passed", "skipped", "failed"][dice.roll(4) as usize],
                duration_ms: 3000 + dice.roll(3000) as i64,
            },
        ];
        if dice.roll(3) == 0 {
            cases.push(SeededCase {
                nodeid: "seed/test_b.py::test_now_and_then".into(),
                outcome: ["passed", "error"][dice.roll(2) as usize],
                duration_ms: 700 + dice.roll(300) as i64,
            });
        }
        let id = insert_run(conn, environment_id, finished_at, &cases);
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
                let key = (case.nodeid.as_str(), run.environment_id);
                if let Some((before, before_run)) = last.insert(key, (passed, run.id)) {
                    if before != passed {
                        let entry = flips.entry(case.nodeid.as_str()).or_insert((
                            0,
                            run.finished_at,
                            vec![],
                        ));
                        entry.0 += 1;
                        entry.1 = entry.1.max(run.finished_at);
                        entry.2.extend([run.id, before_run]);
                    }
                }
                let timing = durations.entry(case.nodeid.as_str()).or_default();
                timing.0.push(case.duration_ms);
                timing.1.push(run.id);
            }
            if case.outcome == "failed" || case.outcome == "error" {
                let entry = failures.entry(case.nodeid.as_str()).or_default();
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

/// Inserts one finished run with its cases, recorded as the service
/// records a finish; its id.
fn insert_run(
    conn: &mut PgConnection,
    environment_id: i32,
    finished_at: DateTime<Utc>,
    cases: &[SeededCase],
) -> i64 {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
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
    .bind::<Array<Text>, _>(cases.iter().map(|c| c.nodeid.as_str()).collect::<Vec<_>>())
    .bind::<Array<Text>, _>(cases.iter().map(|c| c.outcome).collect::<Vec<_>>())
    .bind::<Array<BigInt>, _>(cases.iter().map(|c| c.duration_ms).collect::<Vec<_>>())
    .execute(conn)
    .unwrap();
    // Recorded as a finish records a run: environment health, which the
    // answer's suspect environments come from, included.
    diesel::sql_query("SELECT record_test_results($1), record_environment_results($1)")
        .bind::<BigInt, _>(id)
        .execute(conn)
        .unwrap();
    id
}

fn db_now(conn: &mut PgConnection) -> DateTime<Utc> {
    #[derive(QueryableByName)]
    struct Now {
        #[diesel(sql_type = Timestamptz)]
        now: DateTime<Utc>,
    }
    diesel::sql_query("SELECT now() AS now")
        .get_result::<Now>(conn)
        .unwrap()
        .now
}

/// Inserts and records a finished run of one passed case per duration.
fn insert_passed(
    conn: &mut PgConnection,
    runs: &mut Vec<SeededRun>,
    finished_at: DateTime<Utc>,
    results: impl IntoIterator<Item = (String, i64)>,
) {
    let cases: Vec<SeededCase> = results
        .into_iter()
        .map(|(nodeid, duration_ms)| SeededCase {
            nodeid,
            outcome: "passed",
            duration_ms,
        })
        .collect();
    let environment_id = 1 + (runs.len() % 3) as i32;
    let id = insert_run(conn, environment_id, finished_at, &cases);
    runs.push(SeededRun {
        id,
        environment_id,
        finished_at,
        cases,
    });
}

/// Medians at and around the edges of the histograms' buckets (16, 18,
/// 512, 576, 640, 2^20 ms are bounds), each the median of many tests.
const NEAR_EDGES: [i64; 16] = [
    511, 512, 512, 513, 540, 575, 575, 576, 577, 639, 640, 15, 16, 17, 1_048_575, 1_048_576,
];

/// 120 tests, each with its median (one of [`NEAR_EDGES`]) and its
/// durations: as many below the median as above (one more above for an
/// even count), spread over many buckets.
fn crowd(name: &str, seed: u64) -> Vec<(String, i64, Vec<i64>)> {
    let mut dice = Dice(seed);
    (0..120)
        .map(|i| {
            let median = NEAR_EDGES[dice.roll(NEAR_EDGES.len() as u64) as usize];
            let below = 1 + dice.roll(3) as usize;
            let above = below + dice.roll(2) as usize;
            let mut durations = vec![median];
            durations.extend((0..below).map(|_| dice.roll(median as u64) as i64));
            durations.extend((0..above).map(|_| median + 1 + dice.roll(3000) as i64));
            let nodeid = format!("crowd/test_{name}_{}.py::test_{i:03}", i % 7);
            (nodeid, median, durations)
        })
        .collect()
}

/// Runs of a crowd of tests between one and eighteen hours ago (hourly
/// rows and daily rows alike): the run `k` holds the `k`-th duration of
/// each test that has one.
fn seed_crowd(
    conn: &mut PgConnection,
    runs: &mut Vec<SeededRun>,
    tests: &[(String, i64, Vec<i64>)],
    minutes_ago: i64,
) {
    let now = db_now(conn);
    for k in 0..tests.iter().map(|t| t.2.len()).max().unwrap_or(0) {
        let results = tests
            .iter()
            .filter_map(|(nodeid, _, durations)| Some((nodeid.clone(), *durations.get(k)?)));
        let finished_at = now - chrono::Duration::minutes(minutes_ago + 127 * k as i64);
        insert_passed(conn, runs, finished_at, results);
    }
}

/// Runs in the first, partial hour of a one-day window, at least 90
/// seconds after its start (waiting for the next hour when the partial
/// one is too short for that), whose results are read from the case rows:
/// they decide two tests' medians.
fn seed_tail(conn: &mut PgConnection, runs: &mut Vec<SeededRun>) {
    let hour = |t: DateTime<Utc>| 3600 - t.timestamp().rem_euclid(3600);
    let mut start = db_now(conn) - chrono::Duration::days(1);
    if hour(start) < 100 {
        std::thread::sleep(std::time::Duration::from_secs(hour(start) as u64 + 2));
        start = db_now(conn) - chrono::Duration::days(1);
    }
    let slow = "tail/test_t.py::test_slow_lately".to_string();
    let quick = "tail/test_t.py::test_quick_lately".to_string();
    // Slow in three results of five, all three in the partial hour.
    // Quick in six results of eight, all six there.
    for k in 0..3 {
        let at = start + chrono::Duration::seconds(90 + k);
        let results = [
            (slow.clone(), 9_000 + k),
            (quick.clone(), 1 + k),
            (quick.clone(), 2),
        ];
        insert_passed(conn, runs, at, results);
    }
    let now = db_now(conn);
    for k in 0..2 {
        let at = now - chrono::Duration::minutes(90 + 200 * k);
        insert_passed(conn, runs, at, [(slow.clone(), 3), (quick.clone(), 50_000)]);
    }
}

/// The slowest tests rank by exact lower medians, whether the durations
/// were recorded before the histograms existed (and filled in by the
/// upgrade), recorded since, rebuilt, or read from the window's case rows;
/// with ties around the 50th and medians on either side of bucket edges.
#[test]
fn the_slowest_tests_rank_by_exact_medians_around_bucket_edges_and_ties() {
    use backend::db::histogram::bucket_of;
    use diesel_migrations::MigrationHarness;
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    // Back to the tables without histograms, for the first runs.
    while conn
        .revert_last_migration(backend::db::MIGRATIONS)
        .unwrap()
        .to_string()
        != "20261212000000"
    {}
    let mut runs = Vec::new();
    let old = crowd("old", 0x5851_f42d_4c95_7f2d);
    seed_crowd(&mut conn, &mut runs, &old, 60);
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn_on(db.clone(), &tests, &[]);
    let new = crowd("new", 0x1405_7b7e_f767_814f);
    seed_crowd(&mut conn, &mut runs, &new, 90);
    // One more result below and one above each older test's median (its
    // rows' histograms filled in by the upgrade, now added to).
    let now = db_now(&mut conn);
    for (k, pick) in [(0, 0), (1, 1)] {
        let results = old.iter().map(|(nodeid, median, durations)| {
            let below = durations.iter().copied().filter(|d| d < median).min();
            let above = durations.iter().copied().filter(|d| d > median).max();
            let extra = if pick == 0 { below } else { above };
            (nodeid.clone(), extra.unwrap_or(*median))
        });
        insert_passed(
            &mut conn,
            &mut runs,
            now - chrono::Duration::minutes(30 + k),
            results,
        );
    }
    seed_tail(&mut conn, &mut runs);

    let check = |label: &str| {
        for days in [1, 2, 7] {
            let start = Utc::now() - chrono::Duration::days(days);
            let (status, answer) = app.get(&format!("/api/insights?days={days}"));
            assert_eq!(status, 200, "{answer}");
            let expected = expected_insights(&runs, start);
            let ranked = |list: &Value| -> Vec<(String, i64)> {
                let list = list.as_array().unwrap().iter().take(50);
                list.map(|s| {
                    (
                        s["nodeid"].as_str().unwrap().to_owned(),
                        s["median_ms"].as_i64().unwrap(),
                    )
                })
                .collect()
            };
            let slowest = answer["slowest"].as_array().unwrap();
            assert_eq!(slowest.len(), 50);
            assert_eq!(
                ranked(&answer["slowest"]),
                ranked(&expected["slowest"]),
                "{label}, {days} days"
            );
            assert_eq!(
                slowest[..],
                expected["slowest"].as_array().unwrap()[..50],
                "{label}, {days} days"
            );
            assert_eq!(
                answer["failing"], expected["failing"],
                "{label}, {days} days"
            );
            let listed = |nodeid: &str| slowest.iter().any(|s| s["nodeid"] == nodeid);
            assert!(listed("tail/test_t.py::test_slow_lately"), "{label}");
            assert!(!listed("tail/test_t.py::test_quick_lately"), "{label}");
            // The 50th ties with the 51st, and the list ends inside a bucket
            // that holds other medians too.
            let medians: Vec<i64> = expected_slowest_medians(&runs, start);
            assert_eq!(medians[49], medians[50], "{label}: the seed makes a tie");
            let last = bucket_of(medians[49] as i32);
            assert!(
                medians
                    .iter()
                    .any(|m| bucket_of(*m as i32) == last && *m != medians[49]),
                "{label}: {medians:?}"
            );
        }
    };
    check("recorded before and after the upgrade");
    diesel::sql_query("SELECT rebuild_test_insights()")
        .execute(&mut conn)
        .unwrap();
    check("rebuilt from the case rows");
}

/// Every test's lower median in the window, highest first.
fn expected_slowest_medians(runs: &[SeededRun], start: DateTime<Utc>) -> Vec<i64> {
    let mut durations: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.finished_at >= start) {
        for case in run.cases.iter().filter(|c| c.outcome != "skipped") {
            durations
                .entry(&case.nodeid)
                .or_default()
                .push(case.duration_ms);
        }
    }
    let mut medians: Vec<i64> = durations
        .into_values()
        .map(|mut ms| {
            ms.sort_unstable();
            ms[(ms.len() - 1) / 2]
        })
        .collect();
    medians.sort_unstable_by(|a, b| b.cmp(a));
    medians
}

/// The database and the backend put every duration in the same bucket.
#[test]
fn durations_fall_in_the_same_buckets_in_the_database_and_the_backend() {
    use backend::db::histogram::bucket_of;
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    let mut values: Vec<i32> = vec![i32::MIN, -1, i32::MAX];
    for power in 0..31 {
        let edge = 1_i64 << power;
        for near in [
            edge - 1,
            edge,
            edge + 1,
            edge + edge / 64,
            edge + edge / 32 - 1,
        ] {
            if let Ok(ms) = i32::try_from(near) {
                values.push(ms);
            }
        }
    }
    values.extend(0..2000);
    let mut dice = Dice(0x2545_f491_4f6c_dd1d);
    values.extend((0..5000).map(|_| dice.roll(i32::MAX as u64) as i32));
    #[derive(QueryableByName)]
    struct Bucket {
        #[diesel(sql_type = Integer)]
        bucket: i32,
    }
    let buckets: Vec<Bucket> = diesel::sql_query(
        "SELECT duration_bucket(ms) AS bucket \
         FROM unnest($1::int[]) WITH ORDINALITY AS v (ms, i) ORDER BY i",
    )
    .bind::<Array<Integer>, _>(&values)
    .load(&mut conn)
    .unwrap();
    assert_eq!(buckets.len(), values.len());
    for (ms, bucket) in values.iter().zip(&buckets) {
        assert_eq!(bucket.bucket as usize, bucket_of(*ms), "{ms} ms");
    }
}
