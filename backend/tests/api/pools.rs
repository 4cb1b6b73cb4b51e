//! Pools, run groups and runner labels: runs for any free environment
//! with a label, one suite split over several, instances that reach only
//! some environments; across instances and past a killed one.

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;

use crate::helpers::*;

/// Writes `start <run>` and `end <run>` around a short sleep into a file
/// per environment, so that overlapping runs on one environment show.
const MARK: &str = "import os, time\nHERE = os.path.dirname(os.path.abspath(__file__))\n\n\
def test_mark():\n    path = os.path.join(HERE, 'env-' + os.environ['TEST_ENV_ID'] + '.log')\n    \
with open(path, 'a') as f:\n        f.write('start ' + os.environ['TEST_RUN_ID'] + '\\n')\n    \
time.sleep(0.2)\n    with open(path, 'a') as f:\n        f.write('end ' + os.environ['TEST_RUN_ID'] + '\\n')\n";
/// Ends once the file `gate` exists next to it.
const GATED: &str = "import os, time\n\nGATE = os.path.join(os.path.dirname(__file__), 'gate')\n\n\
def test_gated():\n    deadline = time.time() + 120\n    while not os.path.exists(GATE) and time.time() < deadline:\n        time.sleep(0.05)\n";

fn label(app: &TestApp, environments: &[i32], labels: &[&str]) {
    for id in environments {
        let (status, answer) = app.put(
            &format!("/api/environments/{id}"),
            &json!({"labels": labels}),
        );
        assert_eq!(status, 200, "{answer}");
    }
}

fn create_pool_run(app: &TestApp, username: &str, label: &str, paths: &[&str]) -> Value {
    let (status, run) = app.post(
        "/api/runs",
        &json!({"username": username, "environment_label": label, "paths": paths}),
    );
    assert_eq!(status, 201, "{run}");
    run
}

/// Every environment's marks, checked: each run's start is followed by its
/// own end before anything else starts there. Answers the runs per
/// environment.
fn assert_no_overlap(tests: &TestsDir) -> BTreeMap<String, Vec<String>> {
    let mut runs = BTreeMap::new();
    for entry in std::fs::read_dir(tests.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.starts_with("env-") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() % 2, 0, "{name}: {text}");
        let mut here = Vec::new();
        for pair in lines.chunks(2) {
            let start = pair[0].strip_prefix("start ").expect("a start");
            let end = pair[1].strip_prefix("end ").expect("an end");
            assert_eq!(start, end, "two runs at once on {name}:\n{text}");
            here.push(start.to_string());
        }
        runs.insert(name, here);
    }
    runs
}

#[test]
fn a_pool_run_takes_the_first_free_environment_with_its_label_in_order() {
    let tests = TestsDir::with(&[("gated/test_gated.py", GATED), ("test_mark.py", MARK)]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "4")]);
    label(&app, &[81, 82], &["blue"]);
    let first = create_pool_run(&app, "ann", "blue", &["gated"]);
    assert_eq!(first["environment_id"], Value::Null, "{first}");
    assert_eq!(first["environment_label"], "blue");
    let second = create_pool_run(&app, "ann", "blue", &["gated"]);
    let ids: Vec<i64> = [&first, &second]
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    for id in &ids {
        app.wait_run(*id, SECS_30, |r| r["status"] == "running");
    }
    let on: HashSet<i64> = ids
        .iter()
        .map(|id| app.run(*id)["environment_id"].as_i64().unwrap())
        .collect();
    assert_eq!(on, HashSet::from([81, 82]), "one on each");

    // Both busy: the next ones wait for the pool, in order.
    let third = create_pool_run(&app, "bea", "blue", &["test_mark.py"]);
    let fourth = create_pool_run(&app, "bea", "blue", &["test_mark.py"]);
    let (third, fourth) = (
        third["id"].as_i64().unwrap(),
        fourth["id"].as_i64().unwrap(),
    );
    std::thread::sleep(scaled(Duration::from_millis(600)));
    let waiting = app.run(third);
    assert_eq!(waiting["status"], "queued", "{waiting}");
    assert_eq!(waiting["environment_id"], Value::Null);
    assert_eq!(waiting["queue_position"], 1, "{waiting}");
    assert_eq!(app.run(fourth)["queue_position"], 2);
    assert!(waiting["estimated_start_at"].is_string(), "{waiting}");

    tests.write("gated/gate", "");
    for id in ids.iter().chain([&third, &fourth]) {
        assert_eq!(app.wait_finished(*id, SECS_30)["status"], "success");
    }
    let (third, fourth) = (app.run(third), app.run(fourth));
    assert!([81, 82].contains(&third["environment_id"].as_i64().unwrap()));
    assert!(
        third["started_at"].as_str() <= fourth["started_at"].as_str(),
        "FIFO across the pool: {third} {fourth}"
    );
    assert_no_overlap(&tests);

    // A label no environment has is refused at once.
    let answer = app.post(
        "/api/runs",
        &json!({"username": "ann", "environment_label": "nowhere", "paths": ["test_mark.py"]}),
    );
    assert_error(&answer, 422, "validation");
    assert!(answer.1["error"]["fields"]["environment_label"].is_string());
    let both = app.post(
        "/api/runs",
        &json!({"username": "ann", "environment_id": 81, "environment_label": "blue",
                "paths": ["test_mark.py"]}),
    );
    assert_error(&both, 422, "validation");
    let neither = app.post(
        "/api/runs",
        &json!({"username": "ann", "paths": ["test_mark.py"]}),
    );
    assert_error(&neither, 422, "validation");
    assert!(neither.1["error"]["fields"]["environment_id"].is_string());
}

#[test]
fn pools_never_double_book_across_instances() {
    let tests = TestsDir::with(&[("test_mark.py", MARK)]);
    let db = TestDb::create();
    let env = |id| [("INSTANCE_ID", id), ("MAX_PARALLEL_RUNS", "3")];
    let a = TestApp::spawn_on(Arc::clone(&db), &tests, &env("pool-a"));
    let b = TestApp::spawn_on(Arc::clone(&db), &tests, &env("pool-b"));
    label(&a, &[83, 84, 85], &["green"]);
    let ids: Vec<i64> = (0..18)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            create_pool_run(app, "cid", "green", &["test_mark.py"])["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    for id in &ids {
        assert_eq!(a.wait_finished(*id, SECS_30)["status"], "success");
    }
    let ran = assert_no_overlap(&tests);
    let mut seen: Vec<String> = ran.values().flatten().cloned().collect();
    seen.sort();
    let mut expected: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected, "each run ran once: {ran:?}");
    let mut conn = db.conn();
    let instances: Vec<Option<String>> = diesel::sql_query(
        "SELECT instance_id AS label FROM test_runs WHERE environment_label = 'green'",
    )
    .load::<Label>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|row| row.label)
    .collect();
    assert!(instances.iter().all(Option::is_some));
}

#[derive(QueryableByName)]
struct Label {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    label: Option<String>,
}

#[test]
fn runner_labels_keep_each_instance_to_the_environments_it_reaches() {
    let tests = TestsDir::with(&[("test_mark.py", MARK)]);
    let db = TestDb::create();
    let lab = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[("INSTANCE_ID", "in-lab"), ("RUNNER_LABELS", "lab")],
    );
    label(&lab, &[86], &["lab"]);
    label(&lab, &[87], &["office", "printers"]);
    let in_lab = lab.create_run("dee", 86, &["test_mark.py"]);
    let in_office = lab.create_run("dee", 87, &["test_mark.py"]);
    let office_pool = create_pool_run(&lab, "dee", "office", &["test_mark.py"]);
    let office_pool = office_pool["id"].as_i64().unwrap();
    assert_eq!(lab.wait_finished(in_lab, SECS_30)["status"], "success");

    // Nobody serves the office yet: the runs wait, and say why.
    std::thread::sleep(scaled(Duration::from_millis(600)));
    let waiting = lab.run(in_office);
    assert_eq!(waiting["status"], "queued");
    let why = waiting["status_reason"].as_str().unwrap_or_default();
    assert!(
        why.contains("no running instance serves environment 87"),
        "{waiting}"
    );
    let pooled = lab.run(office_pool);
    let why = pooled["status_reason"].as_str().unwrap_or_default();
    assert!(why.contains("no running instance serves"), "{pooled}");
    assert!(why.contains("office"), "{pooled}");

    let mut office = TestApp::spawn_on(
        Arc::clone(&db),
        &tests,
        &[
            ("INSTANCE_ID", "in-office"),
            ("RUNNER_LABELS", "office, elsewhere"),
        ],
    );
    assert_eq!(
        office.wait_finished(in_office, SECS_30)["status"],
        "success"
    );
    let done = office.wait_finished(office_pool, SECS_30);
    assert_eq!(done["environment_id"], 87);
    assert_eq!(done["status_reason"], Value::Null, "{done}");
    let mut conn = db.conn();
    let holders: Vec<Option<String>> = diesel::sql_query(format!(
        "SELECT instance_id AS label FROM test_runs WHERE id IN ({in_lab}, {in_office}, {office_pool}) ORDER BY id"
    ))
    .load::<Label>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|row| row.label)
    .collect();
    assert_eq!(
        holders,
        [Some("in-lab"), Some("in-office"), Some("in-office")].map(|s| s.map(String::from))
    );

    // The office's instance goes: a new run there says so again.
    office.signal(libc::SIGKILL);
    office.wait_exit(Duration::from_secs(5)).expect("killed");
    let stranded = lab.create_run("dee", 87, &["test_mark.py"]);
    eventually(SECS_30, "the run says nobody serves it", || {
        lab.run(stranded)["status_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no running instance serves environment 87")
    });
}

/// A test file that sleeps `secs` seconds.
fn sleeper(secs: f64) -> String {
    format!("import time\n\ndef test_sleeps():\n    time.sleep({secs})\n")
}

/// The shard (its paths) that holds `file`.
fn shard_of<'a>(group: &'a Value, file: &str) -> &'a Value {
    group["shard_runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|run| run["paths"].as_array().unwrap().iter().any(|p| p == file))
        .unwrap_or_else(|| panic!("{file} in no shard: {group}"))
}

fn wait_group(app: &TestApp, id: i64) -> Value {
    let (_, group) = app.get(&format!("/api/run-groups/{id}"));
    for run in group["runs"].as_array().unwrap() {
        app.wait_finished(run.as_i64().unwrap(), SECS_30);
    }
    let (status, group) = app.get(&format!("/api/run-groups/{id}"));
    assert_eq!(status, 200, "{group}");
    group
}

#[test]
fn a_run_group_splits_tests_by_their_past_durations_and_answers_as_one() {
    // Sorted by name, equal weights deal a, b, c, d, e, f to shards 1, 2,
    // 1, 2, 1, 2: the two slow files would share a shard.
    let slow = sleeper(1.0);
    let quick = sleeper(0.0);
    let tests = TestsDir::with(&[
        ("suite/test_a_slow.py", slow.as_str()),
        ("suite/test_b.py", quick.as_str()),
        ("suite/test_c_slow.py", slow.as_str()),
        ("suite/test_d.py", quick.as_str()),
        ("suite/test_e.py", quick.as_str()),
        ("suite/test_f.py", quick.as_str()),
        (
            "other/test_fails.py",
            "def test_fails():\n    assert 1 == 2\n",
        ),
    ]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "4")]);
    label(&app, &[91, 92, 93], &["split"]);
    let create = |shards: i32, paths: &[&str]| {
        app.post(
            "/api/run-groups",
            &json!({"username": "eve", "environment_label": "split", "shards": shards, "paths": paths}),
        )
    };

    let (status, blind) = create(2, &["suite"]);
    assert_eq!(status, 201, "{blind}");
    assert_eq!(blind["runs"].as_array().unwrap().len(), 2);
    assert_eq!(
        shard_of(&blind, "suite/test_a_slow.py")["shard"],
        shard_of(&blind, "suite/test_c_slow.py")["shard"],
        "without history, by name: {blind}"
    );
    let blind = wait_group(&app, blind["id"].as_i64().unwrap());
    assert_eq!(blind["status"], "success", "{blind}");
    assert_eq!(blind["summary"]["total"], 6);
    assert_eq!(blind["summary"]["passed"], 6);
    for run in blind["shard_runs"].as_array().unwrap() {
        assert_eq!(run["run_group_id"], blind["id"]);
        assert!([91, 92, 93].contains(&run["environment_id"].as_i64().unwrap()));
    }

    // Now the history knows which files are slow: they go apart.
    let (status, balanced) = create(2, &["suite"]);
    assert_eq!(status, 201, "{balanced}");
    assert_ne!(
        shard_of(&balanced, "suite/test_a_slow.py")["shard"],
        shard_of(&balanced, "suite/test_c_slow.py")["shard"],
        "balanced by duration: {balanced}"
    );
    let balanced = wait_group(&app, balanced["id"].as_i64().unwrap());
    assert_eq!(balanced["status"], "success");
    assert!(balanced["duration_ms"].as_i64().unwrap() > 0);

    // More shards than files: one per file. A failing shard fails the group.
    let (status, small) = create(5, &["suite/test_b.py", "other"]);
    assert_eq!(status, 201, "{small}");
    assert_eq!(small["shards_requested"], 5);
    assert_eq!(small["runs"].as_array().unwrap().len(), 2);
    let small = wait_group(&app, small["id"].as_i64().unwrap());
    assert_eq!(small["status"], "failed", "{small}");
    assert_eq!(small["summary"]["failed"], 1);
    assert_eq!(small["summary"]["passed"], 1);

    assert_error(&create(1, &["suite"]), 422, "validation");
    assert_error(&create(101, &["suite"]), 422, "validation");
    assert_error(&create(2, &["missing"]), 422, "validation");
    let no_pool = app.post(
        "/api/run-groups",
        &json!({"username": "eve", "environment_label": "nowhere", "shards": 2, "paths": ["suite"]}),
    );
    assert_error(&no_pool, 422, "validation");
    assert!(no_pool.1["error"]["fields"]["environment_label"].is_string());
    assert_error(&app.get("/api/run-groups/999999"), 404, "not_found");
    let (status, listed) = app.get("/api/run-groups");
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[test]
fn a_shard_whose_instance_dies_is_run_again_by_another() {
    let tests = TestsDir::with(&[("gated/test_one.py", GATED), ("gated/test_two.py", GATED)]);
    let db = TestDb::create();
    let env = |id| {
        [
            ("INSTANCE_ID", id),
            ("LEASE_SECS", "2"),
            ("MAX_PARALLEL_RUNS", "2"),
        ]
    };
    let mut doomed = TestApp::spawn_on(Arc::clone(&db), &tests, &env("doomed"));
    label(&doomed, &[94, 95], &["fragile"]);
    let (status, group) = doomed.post(
        "/api/run-groups",
        &json!({"username": "fay", "environment_label": "fragile", "shards": 2, "paths": ["gated"]}),
    );
    assert_eq!(status, 201, "{group}");
    let first_runs: Vec<i64> = group["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    for id in &first_runs {
        doomed.wait_run(*id, SECS_30, |r| r["status"] == "running");
    }
    let survivor = TestApp::spawn_on(Arc::clone(&db), &tests, &env("survivor"));
    doomed.signal(libc::SIGKILL);
    doomed.wait_exit(Duration::from_secs(5)).expect("killed");
    tests.write("gated/gate", "");
    for id in &first_runs {
        let lost = survivor.wait_finished(*id, SECS_30);
        assert_eq!(lost["status"], "error", "{lost}");
    }
    let id = group["id"].as_i64().unwrap();
    eventually(SECS_30, "both shards run again", || {
        let (_, group) = survivor.get(&format!("/api/run-groups/{id}"));
        group["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|run| !first_runs.contains(&run.as_i64().unwrap()))
    });
    let group = wait_group(&survivor, id);
    assert_eq!(group["status"], "success", "{group}");
    assert_eq!(group["summary"]["passed"], 2);
    for run in group["shard_runs"].as_array().unwrap() {
        assert!(
            first_runs.contains(&run["rerun_of"].as_i64().unwrap()),
            "{run}"
        );
    }
    let mut conn = db.conn();
    let holders: Vec<Option<String>> = diesel::sql_query(format!(
        "SELECT instance_id AS label FROM test_runs WHERE run_group_id = {id} AND status = 'success'"
    ))
    .load::<Label>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|row| row.label)
    .collect();
    assert_eq!(holders, vec![Some("survivor".to_string()); 2]);
}

#[test]
fn cancelling_a_group_cancels_every_shard() {
    let tests = TestsDir::with(&[
        ("gated/test_one.py", GATED),
        ("gated/test_two.py", GATED),
        ("gated/test_three.py", GATED),
    ]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "1")]);
    label(&app, &[96], &["lonely"]);
    let (status, group) = app.post(
        "/api/run-groups",
        &json!({"username": "gil", "environment_label": "lonely", "shards": 3, "paths": ["gated"]}),
    );
    assert_eq!(status, 201, "{group}");
    let first = group["runs"][0].as_i64().unwrap();
    app.wait_run(first, SECS_30, |r| r["status"] == "running");
    let (_, going) = app.get(&format!("/api/run-groups/{}", group["id"]));
    assert_eq!(going["status"], "running");
    let (status, cancelled) = app.post(
        &format!("/api/run-groups/{}/cancel", group["id"]),
        &json!({}),
    );
    assert_eq!(status, 200, "{cancelled}");
    let group = wait_group(&app, group["id"].as_i64().unwrap());
    assert_eq!(group["status"], "cancelled", "{group}");
    for run in group["shard_runs"].as_array().unwrap() {
        assert_eq!(run["status"], "cancelled", "{run}");
    }
}
