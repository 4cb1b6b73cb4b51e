//! What operators see: `/metrics`, structured logs with run ids, and the
//! OpenAPI document.

use serde_json::Value;
use std::collections::HashMap;

use crate::helpers::*;

const PASSING: &str = "def test_one():\n    pass\n\ndef test_two():\n    pass\n";
const FAILING: &str = "def test_bad():\n    assert 1 == 2\n";
const SLOW: &str = "import time\n\ndef test_slow():\n    time.sleep(30)\n";

/// `name{labels}` to value, for every sample of a scrape.
fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let (status, content_type, text) = app.get_text("/metrics");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sample(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in the scrape: {metrics:?}"))
}

#[test]
fn a_scrape_after_a_few_runs_shows_the_right_counts() {
    let tests = TestsDir::with(&[
        ("test_pass.py", PASSING),
        ("test_fail.py", FAILING),
        ("test_slow.py", SLOW),
    ]);
    let app = TestApp::spawn(&tests, &[("MAX_PARALLEL_RUNS", "4")]);
    for (environment, file) in [
        (1, "test_pass.py"),
        (2, "test_pass.py"),
        (3, "test_fail.py"),
    ] {
        let id = app.create_run("kim", environment, &[file]);
        app.wait_finished(id, SECS_30);
    }
    // One running on environment 9 and one queued behind it.
    let slow = app.create_run("kim", 9, &["test_slow.py"]);
    app.wait_run(slow, SECS_30, |run| run["status"] == "running");
    let waiting = app.create_run("kim", 9, &["test_pass.py"]);
    // A run thread ends a moment after its finish is written: only the
    // slow run is left once the earlier ones' threads are gone.
    eventually(SECS_30, "the finished runs' threads end", || {
        sample(&scrape(&app), "test_executor_local_runs") == 1.0
    });

    let metrics = scrape(&app);
    for (status, count) in [
        ("success", 2.0),
        ("failed", 1.0),
        ("running", 1.0),
        ("queued", 1.0),
        ("error", 0.0),
        ("cancelled", 0.0),
    ] {
        assert_eq!(
            sample(
                &metrics,
                &format!("test_executor_runs{{status=\"{status}\"}}")
            ),
            count,
            "{status}"
        );
    }
    assert_eq!(
        sample(&metrics, "test_executor_queue_depth{environment_id=\"9\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "test_executor_queue_depth{environment_id=\"1\"}"),
        0.0
    );
    assert_eq!(sample(&metrics, "test_executor_environments_busy"), 1.0);
    assert_eq!(sample(&metrics, "test_executor_environments"), 100.0);
    assert_eq!(sample(&metrics, "test_executor_local_runs"), 1.0);
    assert_eq!(sample(&metrics, "test_executor_database_up"), 1.0);
    assert_eq!(
        sample(
            &metrics,
            "test_executor_run_duration_seconds_count{status=\"success\"}"
        ),
        2.0
    );
    assert_eq!(
        sample(
            &metrics,
            "test_executor_run_duration_seconds_count{status=\"failed\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(
            &metrics,
            "test_executor_run_duration_seconds_bucket{status=\"failed\",le=\"+Inf\"}"
        ),
        1.0
    );
    // By route pattern, not by path: all five creations are one series.
    assert_eq!(
        sample(
            &metrics,
            "test_executor_http_request_duration_seconds_count{method=\"POST\",route=\"/api/runs\",status=\"201\"}"
        ),
        5.0
    );
    assert!(
        sample(
            &metrics,
            "test_executor_http_request_duration_seconds_count{method=\"GET\",route=\"/api/runs/{id}\",status=\"200\"}"
        ) >= 3.0
    );
    assert!(sample(&metrics, "test_executor_db_pool_max_connections") >= 2.0);
    assert!(
        sample(
            &metrics,
            "test_executor_db_pool_connections{state=\"idle\"}"
        ) >= 0.0
    );
    assert!(sample(&metrics, "process_resident_memory_bytes") > 1e6);
    assert!(sample(&metrics, "process_open_fds") > 3.0);
    assert!(sample(&metrics, "process_max_fds") > 0.0);

    app.post(
        &format!("/api/runs/{waiting}/cancel"),
        &serde_json::json!({}),
    );
    app.post(&format!("/api/runs/{slow}/cancel"), &serde_json::json!({}));
    let after = scrape(&app);
    assert_eq!(
        sample(&after, "test_executor_runs{status=\"cancelled\"}"),
        2.0
    );
    assert_eq!(sample(&after, "test_executor_environments_busy"), 0.0);
}

#[test]
fn json_log_lines_about_a_run_carry_its_run_id() {
    let tests = TestsDir::with(&[("test_pass.py", PASSING)]);
    let app = TestApp::spawn(&tests, &[("LOG_FORMAT", "json")]);
    let id = app.create_run("lee", 6, &["test_pass.py"]);
    app.wait_finished(id, SECS_30);
    let again = app.post(&format!("/api/runs/{id}/rerun"), &serde_json::json!({}));
    assert_eq!(again.0, 201);
    let second = again.1["id"].as_i64().expect("id");
    app.wait_finished(second, SECS_30);
    assert_eq!(app.get("/api/runs/999").0, 404);

    let log = app.service_log();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let run_id_of = |line: &Value| {
        line["fields"]["run_id"]
            .as_i64()
            .or_else(|| line["span"]["run_id"].as_i64())
    };
    for message in [
        "run queued",
        "run started",
        "run finished",
        "run queued again",
    ] {
        let about: Vec<&Value> = lines
            .iter()
            .filter(|line| line["fields"]["message"] == message)
            .collect();
        assert!(!about.is_empty(), "no {message:?} line in\n{log}");
        for line in about {
            assert!(run_id_of(line).is_some(), "no run_id: {line}");
        }
    }
    // The request log: writes at info level, by route, with the run id.
    let request = lines
        .iter()
        .find(|line| {
            line["target"] == "backend::http" && line["fields"]["route"] == "/api/runs/{id}/rerun"
        })
        .unwrap_or_else(|| panic!("no request line for the rerun in\n{log}"));
    assert_eq!(request["fields"]["status"], 201);
    assert_eq!(request["fields"]["method"], "POST");
    assert_eq!(run_id_of(request), Some(id));
    assert!(request["fields"]["duration_ms"].is_number());
    let missing = lines
        .iter()
        .find(|line| line["target"] == "backend::http" && line["fields"]["status"] == 404)
        .unwrap_or_else(|| panic!("no request line for the 404 in\n{log}"));
    assert_eq!(run_id_of(missing), Some(999));
}

#[test]
fn the_openapi_document_covers_every_endpoint_and_error() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, doc) = app.get("/api/openapi.json");
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let expected = [
        ("/api/runs", vec!["get", "post"]),
        ("/api/runs/{id}", vec!["get"]),
        ("/api/runs/{id}/log", vec!["get"]),
        ("/api/runs/{id}/log.txt", vec!["get"]),
        ("/api/runs/{id}/cases", vec!["get"]),
        ("/api/runs/{id}/junit.xml", vec!["get"]),
        ("/api/runs/{id}/cancel", vec!["post"]),
        ("/api/runs/{id}/rerun", vec!["post"]),
        ("/api/environments", vec!["get", "post"]),
        ("/api/environments/{id}", vec!["get", "put", "delete"]),
        ("/api/tests", vec!["get", "post"]),
        ("/api/tests/{path}", vec!["get", "delete"]),
        ("/api/webhooks", vec!["get", "post"]),
        ("/api/webhooks/{id}", vec!["get", "delete"]),
        ("/api/webhooks/{id}/deliveries", vec!["get"]),
        ("/api/schedules", vec!["get", "post"]),
        ("/api/schedules/{id}", vec!["get", "put", "delete"]),
        ("/api/health", vec!["get"]),
        ("/api/openapi.json", vec!["get"]),
        ("/metrics", vec!["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            let operation = &doc["paths"][path][method];
            assert!(operation.is_object(), "{method} {path} is missing");
            let responses = operation["responses"].as_object().expect("responses");
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"];
                    let named = schema["$ref"].as_str().unwrap_or_default().to_string()
                        + schema.to_string().as_str();
                    assert!(
                        named.contains("ApiErrorBody") || named.contains("Health"),
                        "{method} {path} {status}: {response}"
                    );
                }
            }
        }
    }
    let upload = &doc["paths"]["/api/tests"]["post"]["requestBody"]["content"];
    assert!(upload["multipart/form-data"].is_object(), "{upload}");
    let list_params: Vec<&str> = doc["paths"]["/api/runs"]["get"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        list_params,
        ["status", "username", "environment_id", "page", "per_page"]
    );
    for schema in [
        "Run",
        "RunPage",
        "Environment",
        "ApiErrorBody",
        "NewRun",
        "LogChunk",
        "NewWebhook",
        "Webhook",
        "Delivery",
        "NewSchedule",
        "Schedule",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "no {schema} schema"
        );
    }
}
