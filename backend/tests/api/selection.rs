//! Selecting tests by keyword (`-k`) and markers (`-m`), and the markers
//! the catalog offers.

use serde_json::json;
use std::time::Duration;

use crate::helpers::*;

const INI: &str = "[pytest]\nmarkers =\n    smoke: quick checks\n    checkout: the checkout flow\n";
const MARKED: &str = "import pytest\n\n\
@pytest.mark.smoke\ndef test_login_page():\n    pass\n\n\
@pytest.mark.smoke\n@pytest.mark.checkout\ndef test_checkout_total():\n    pass\n\n\
@pytest.mark.checkout\ndef test_checkout_discount():\n    assert False, 'no discount'\n\n\
def test_logout():\n    pass\n";

fn tests_dir() -> TestsDir {
    TestsDir::with(&[("pytest.ini", INI), ("shop/test_marked.py", MARKED)])
}

fn selected(app: &TestApp, run: i64) -> Vec<String> {
    let (status, cases) = app.get(&format!("/api/runs/{run}/cases"));
    assert_eq!(status, 200, "{cases}");
    let mut ids: Vec<String> = cases
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["nodeid"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

fn run_with(app: &TestApp, selection: serde_json::Value) -> serde_json::Value {
    let mut body = json!({"username": "sel", "environment_id": 3, "paths": ["shop"]});
    for (key, value) in selection.as_object().expect("an object") {
        body[key] = value.clone();
    }
    let (status, run) = app.post("/api/runs", &body);
    assert_eq!(status, 201, "{run}");
    run
}

#[test]
fn keyword_and_markers_select_exactly_their_tests_and_stay_on_reruns() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);

    let by_keyword = run_with(&app, json!({"keyword": " checkout and not discount "}));
    assert_eq!(
        by_keyword["keyword"], "checkout and not discount",
        "trimmed"
    );
    assert_eq!(by_keyword["markers"], serde_json::Value::Null);
    let id = by_keyword["id"].as_i64().unwrap();
    let done = app.wait_finished(id, Duration::from_secs(30));
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(
        selected(&app, id),
        ["shop/test_marked.py::test_checkout_total"]
    );

    let by_markers = run_with(&app, json!({"markers": "smoke or checkout"}));
    let id = by_markers["id"].as_i64().unwrap();
    let done = app.wait_finished(id, Duration::from_secs(30));
    assert_eq!(done["status"], "failed", "the discount test fails: {done}");
    assert_eq!(done["markers"], "smoke or checkout");
    assert_eq!(
        selected(&app, id),
        [
            "shop/test_marked.py::test_checkout_discount",
            "shop/test_marked.py::test_checkout_total",
            "shop/test_marked.py::test_login_page",
        ]
    );

    let both = run_with(&app, json!({"markers": "smoke", "keyword": "login"}));
    let both_id = both["id"].as_i64().unwrap();
    app.wait_finished(both_id, Duration::from_secs(30));
    assert_eq!(
        selected(&app, both_id),
        ["shop/test_marked.py::test_login_page"]
    );

    // A re-run keeps the selection; so does a re-run of the failures.
    let (status, again) = app.post(&format!("/api/runs/{id}/rerun"), &json!({}));
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["markers"], "smoke or checkout");
    let again_id = again["id"].as_i64().unwrap();
    app.wait_finished(again_id, Duration::from_secs(30));
    assert_eq!(selected(&app, again_id).len(), 3);
    let (status, failures) = app.post(
        &format!("/api/runs/{id}/rerun?failed_only=true"),
        &json!({}),
    );
    assert_eq!(status, 201, "{failures}");
    assert_eq!(failures["markers"], "smoke or checkout");
    let failures_id = failures["id"].as_i64().unwrap();
    app.wait_finished(failures_id, Duration::from_secs(30));
    assert_eq!(
        selected(&app, failures_id),
        ["shop/test_marked.py::test_checkout_discount"]
    );

    // The expression reaches pytest as one argument: the log shows the
    // selection pytest made, not a shell's doing.
    let log = plain(&app.log_text(id));
    assert!(log.contains("1 deselected"), "{log}");
}

#[test]
fn bad_expressions_are_refused_with_a_reason_and_nothing_is_queued() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let cases = [
        (json!({"keyword": "(checkout"}), "keyword", "never closed"),
        (json!({"keyword": "checkout)"}), "keyword", "has no '('"),
        (
            json!({"markers": "smoke and"}),
            "markers",
            "name is expected",
        ),
        (json!({"markers": "smoke; rm -rf /"}), "markers", "';'"),
        (json!({"keyword": "a\nb"}), "keyword", "one line"),
        (json!({"keyword": "a\u{0}b"}), "keyword", "one line"),
        (json!({"keyword": "$(id)"}), "keyword", "'$'"),
        (json!({"markers": "-p evil"}), "markers", "option"),
        (
            json!({"keyword": "x".repeat(1001)}),
            "keyword",
            "at most 1000",
        ),
        (json!({"keyword": 5}), "keyword", ""),
    ];
    for (selection, field, why) in cases {
        let mut body = json!({"username": "sel", "environment_id": 3, "paths": ["shop"]});
        for (key, value) in selection.as_object().unwrap() {
            body[key] = value.clone();
        }
        let answer = app.post("/api/runs", &body);
        assert_error(&answer, 422, "validation");
        let message = answer.1["error"]["fields"][field]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains(why), "{selection}: {}", answer.1);
    }
    let (_, page) = app.get("/api/runs");
    assert_eq!(page["total"], 0, "nothing was queued");

    // Blank means no selection.
    let run = run_with(&app, json!({"keyword": "  ", "markers": null}));
    assert_eq!(run["keyword"], serde_json::Value::Null);
    assert_eq!(run["markers"], serde_json::Value::Null);
}

#[test]
fn the_catalog_lists_the_markers_pytest_knows_and_sees_new_ones() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let names = |app: &TestApp| -> Vec<String> {
        let (status, markers) = app.get("/api/tests/markers");
        assert_eq!(status, 200, "{markers}");
        markers
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let first = names(&app);
    for expected in ["checkout", "smoke", "skipif", "parametrize"] {
        assert!(
            first.iter().any(|n| n == expected),
            "{expected} in {first:?}"
        );
    }
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(first, sorted, "by name");
    let (_, markers) = app.get("/api/tests/markers");
    let smoke = markers
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "smoke")
        .unwrap();
    assert_eq!(smoke["description"], "smoke: quick checks");

    // A marker registered since is listed at once.
    std::thread::sleep(Duration::from_millis(20));
    tests.write(
        "pytest.ini",
        &format!("{INI}    nightly: the long suite, once a day\n"),
    );
    assert!(names(&app).iter().any(|n| n == "nightly"));
}
