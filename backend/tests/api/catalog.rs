//! The test catalog, read live from the tests root.

use crate::helpers::*;

#[test]
fn the_catalog_lists_test_files_live_and_serves_their_source() {
    let tests = TestsDir::with(&[
        ("smoke/test_a.py", "def test_a():\n    pass\n"),
        ("smoke/helper.py", "X = 1\n"),
        ("api/v2/b_test.py", "def test_b():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, catalog) = app.get("/api/tests");
    assert_eq!(status, 200);
    let paths: Vec<&str> = catalog["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(paths, ["api/v2/b_test.py", "smoke/test_a.py"]);
    assert_eq!(
        catalog["directories"],
        serde_json::json!(["api", "api/v2", "smoke"])
    );
    let file = &catalog["files"][1];
    assert_eq!(file["directory"], "smoke");
    assert_eq!(file["name"], "test_a.py");
    assert_eq!(file["size"], 23);
    assert!(file["modified_at"].is_string());

    tests.write("new/test_by_hand.py", "def test_c():\n    pass\n");
    let (_, catalog) = app.get("/api/tests");
    assert!(
        catalog["files"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["path"] == "new/test_by_hand.py"),
        "a file copied in by hand shows up without a restart"
    );

    let (status, content_type, source) = app.get_text("/api/tests/smoke/test_a.py");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(source, "def test_a():\n    pass\n");
    for missing in [
        "/api/tests/smoke/test_zz.py",
        "/api/tests/smoke/helper.py",
        "/api/tests/smoke/../../etc/passwd",
        "/api/tests/%2Fetc%2Fpasswd",
    ] {
        assert_error(&app.get(missing), 404, "not_found");
    }
}

#[test]
fn runs_may_only_name_what_the_catalog_holds() {
    let tests = TestsDir::with(&[
        ("smoke/test_a.py", "def test_a():\n    pass\n"),
        ("smoke/helper.py", ""),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    for bad in [
        "smoke/test_missing.py",
        "smoke/helper.py",
        "../etc/passwd",
        "/etc/passwd",
        "smoke::test_a",
        "smoke\\test_a.py",
    ] {
        let answer = app.post(
            "/api/runs",
            &serde_json::json!({"username": "pat", "environment_id": 1, "paths": [bad]}),
        );
        assert_error(&answer, 422, "validation");
        assert!(
            answer.1["error"]["fields"]["paths"].is_string(),
            "{bad}: {}",
            answer.1
        );
    }
    let (_, runs) = app.get("/api/runs");
    assert_eq!(runs["total"], 0, "refused runs leave nothing behind");
}
