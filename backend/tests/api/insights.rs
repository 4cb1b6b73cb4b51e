//! Test history, flaky and failing tests.

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
