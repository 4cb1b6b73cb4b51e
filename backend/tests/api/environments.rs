//! Managing environments, and what a run sees of its environment.

use serde_json::json;

use crate::helpers::*;

#[test]
fn a_hundred_environments_exist_from_the_start() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, list) = app.get("/api/environments");
    assert_eq!(status, 200);
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 100);
    assert_eq!(list[0]["id"], 1);
    assert_eq!(list[0]["name"], "env-1");
    assert_eq!(list[99]["name"], "env-100");
    assert_eq!(list[6]["state"], "idle");
    assert_eq!(list[6]["queued"], 0);
    assert_eq!(list[6]["current_run_id"], json!(null));
    assert_eq!(list[6]["variables"], json!({}));
    let (status, one) = app.get("/api/environments/42");
    assert_eq!(status, 200);
    assert_eq!(one["name"], "env-42");
    assert_error(&app.get("/api/environments/101"), 404, "not_found");
    assert_error(&app.get("/api/environments/0"), 404, "not_found");
    assert_error(&app.get("/api/environments/abc"), 400, "bad_request");
}

#[test]
fn environments_can_be_updated_deleted_and_created_again() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, updated) = app.put(
        "/api/environments/5",
        &json!({"name": "staging", "description": "the staging cluster",
                "variables": {"API_URL": "http://staging.local"}, "run_timeout_secs": 60}),
    );
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "staging");
    assert_eq!(updated["variables"]["API_URL"], "http://staging.local");
    assert_eq!(updated["run_timeout_secs"], 60);
    let (_, partial) = app.put("/api/environments/5", &json!({"description": "changed"}));
    assert_eq!(
        partial["name"], "staging",
        "fields left out keep their value"
    );
    assert_eq!(partial["description"], "changed");

    assert_error(
        &app.post("/api/environments", &json!({"id": 5, "name": "again"})),
        409,
        "conflict",
    );
    let (status, _) = app.delete("/api/environments/5");
    assert_eq!(status, 204);
    assert_error(&app.get("/api/environments/5"), 404, "not_found");
    assert_error(&app.delete("/api/environments/5"), 404, "not_found");
    let (status, created) = app.post(
        "/api/environments",
        &json!({"id": 5, "name": "reborn", "variables": {"A": "1"}}),
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "reborn");
    assert_eq!(created["description"], "");
    assert_eq!(created["run_timeout_secs"], json!(null));
}

#[test]
fn bad_environment_settings_are_refused_field_by_field() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let answer = app.put(
        "/api/environments/3",
        &json!({"name": "", "variables": {"1BAD": "x"}, "run_timeout_secs": 0}),
    );
    assert_error(&answer, 422, "validation");
    let fields = &answer.1["error"]["fields"];
    assert!(
        fields["name"].is_string()
            && fields["variables"].is_string()
            && fields["run_timeout_secs"].is_string(),
        "{fields}"
    );
    assert_eq!(
        app.get("/api/environments/3").1["name"],
        "env-3",
        "nothing changed"
    );

    let answer = app.post("/api/environments", &json!({"id": 101, "name": "x"}));
    assert_error(&answer, 422, "validation");
    assert!(answer.1["error"]["fields"]["id"].is_string());
    assert_error(
        &app.post("/api/environments", &json!({"id": 3})),
        422,
        "validation",
    );
}

#[test]
fn runs_see_the_environment_variables_and_a_busy_environment_cannot_be_deleted() {
    let tests = TestsDir::with(&[(
        "test_env.py",
        "import os, time\n\ndef test_env():\n    assert os.environ['TEST_ENV_ID'] == '8'\n    assert os.environ['TEST_ENV_NAME'] == 'qa'\n    assert os.environ['API_URL'] == 'http://qa.local'\n    assert os.environ['EXECUTOR_URL'].startswith('http://')\n    assert 'DATABASE_URL' not in os.environ\n    time.sleep(1.5)\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    app.put(
        "/api/environments/8",
        &json!({"name": "qa", "variables": {"API_URL": "http://qa.local"}}),
    );
    let id = app.create_run("nia", 8, &["test_env.py"]);
    app.wait_run(id, SECS_30, |r| r["status"] == "running");
    let (_, env) = app.get("/api/environments/8");
    assert_eq!(env["state"], "busy");
    assert_eq!(env["current_run_id"], id);
    assert_error(&app.delete("/api/environments/8"), 409, "conflict");
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(id));
}

#[test]
fn a_per_environment_timeout_ends_an_endless_run_as_an_error() {
    let tests = TestsDir::with(&[(
        "test_endless.py",
        "import time\n\ndef test_endless():\n    while True:\n        time.sleep(0.1)\n",
    )]);
    let app = TestApp::spawn(&tests, &[]);
    app.put("/api/environments/9", &json!({"run_timeout_secs": 2}));
    let id = app.create_run("oz", 9, &["test_endless.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "error");
    assert_eq!(run["status_reason"], "timed out after 2 s");
}
