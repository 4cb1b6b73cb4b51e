//! Bad input answers a clear 4xx with the JSON error body and changes
//! nothing.

use serde_json::json;

use crate::helpers::*;

#[test]
fn health_answers_ok_with_the_database() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, health) = app.get_anonymous("/api/health");
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert!(health["version"].is_string());
}

#[test]
fn invalid_runs_name_every_bad_field() {
    let tests = TestsDir::with(&[("test_a.py", "def test_a():\n    pass\n")]);
    let app = TestApp::spawn(&tests, &[]);
    let answer = app.post(
        "/api/runs",
        &json!({"username": "  ", "environment_id": 0, "paths": []}),
    );
    assert_error(&answer, 422, "validation");
    let fields = &answer.1["error"]["fields"];
    for field in ["username", "environment_id", "paths"] {
        assert!(fields[field].is_string(), "{field} in {fields}");
    }
    let cases = [
        json!({"username": "x".repeat(65), "environment_id": 1, "paths": ["test_a.py"]}),
        json!({"username": "a\u{7}b", "environment_id": 1, "paths": ["test_a.py"]}),
        json!({"username": 5, "environment_id": 1, "paths": ["test_a.py"]}),
        json!({"username": "u", "environment_id": "1", "paths": ["test_a.py"]}),
        json!({"username": "u", "environment_id": 1.5, "paths": ["test_a.py"]}),
        json!({"username": "u", "environment_id": 101, "paths": ["test_a.py"]}),
        json!({"username": "u", "environment_id": 1, "paths": "test_a.py"}),
        json!({"username": "u", "environment_id": 1, "paths": [1]}),
        json!({"username": "u", "environment_id": 1, "paths": ["test_a.py", "test_a.py"]}),
    ];
    for body in cases {
        assert_error(&app.post("/api/runs", &body), 422, "validation");
    }
    // Someone else's name: a run is its caller's.
    let as_another = crate::helpers::answer(
        agent_request("POST", &app.url("/api/runs"))
            .send_json(json!({"username": "mallory", "environment_id": 1, "paths": ["test_a.py"]})),
    );
    assert_error(&as_another, 422, "validation");
    assert!(as_another.1["error"]["fields"]["username"].is_string());
    app.delete("/api/environments/50");
    let answer = app.post(
        "/api/runs",
        &json!({"username": "u", "environment_id": 50, "paths": ["test_a.py"]}),
    );
    assert_error(&answer, 422, "validation");
    assert!(answer.1["error"]["fields"]["environment_id"].is_string());
    assert_eq!(app.get("/api/runs").1["total"], 0);
}

#[test]
fn malformed_requests_get_the_json_error_body() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    assert_error(
        &app.post_raw("/api/runs", "application/json", "{not json"),
        400,
        "bad_request",
    );
    assert_error(
        &app.post_raw("/api/runs", "text/plain", "{}"),
        400,
        "bad_request",
    );
    assert_error(
        &app.post_raw("/api/runs", "application/json", "[1, 2]"),
        400,
        "bad_request",
    );
    assert_error(
        &app.post_raw("/api/runs", "application/json", ""),
        400,
        "bad_request",
    );
    let huge = format!("{{\"username\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    assert_error(
        &app.post_raw("/api/runs", "application/json", &huge),
        413,
        "too_large",
    );
    assert_error(&app.get("/api/runs/abc"), 400, "bad_request");
    assert_error(&app.get("/api/runs/99999"), 404, "not_found");
    assert_error(&app.get("/api/runs/99999/log"), 404, "not_found");
    assert_error(&app.get("/api/runs/99999/cases"), 404, "not_found");
    assert_error(&app.get("/api/runs/1/log?offset=-1"), 400, "bad_request");
    // A NUL byte reached PostgreSQL, which refuses it in text: a 500.
    assert_error(&app.get("/api/runs?username=a%00b"), 400, "bad_request");
    assert_error(
        &app.get("/api/tests/history?nodeid=a%00b"),
        400,
        "bad_request",
    );
    assert_error(&app.get("/api/nothing-here"), 404, "not_found");
    let wrong_method = app.request("PATCH", "/api/runs");
    assert_eq!(wrong_method.0, 405);
    assert_eq!(wrong_method.1["error"]["code"], "bad_request");
    assert_error(&app.put_raw_environment(), 400, "bad_request");
}

trait PutRaw {
    fn put_raw_environment(&self) -> (u16, serde_json::Value);
}

impl PutRaw for TestApp {
    fn put_raw_environment(&self) -> (u16, serde_json::Value) {
        match agent_request("PUT", &self.url("/api/environments/1"))
            .set("Content-Type", "application/json")
            .send_string("{\"name\": ")
        {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                (status, r.into_json().unwrap_or_default())
            }
            Err(e) => panic!("{e}"),
        }
    }
}
