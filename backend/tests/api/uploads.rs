//! Uploading test files, then running them; refused uploads change nothing.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

use crate::helpers::*;

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "----test-executor-boundary-7d1f";
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(value.as_bytes());
            }
            Part::File(file_name, content) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: text/x-python\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(content);
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(app: &TestApp, parts: &[Part]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    match agent_request("POST", &app.url("/api/tests"))
        .set("Content-Type", &content_type)
        .send_bytes(&body)
    {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            (status, r.into_json().unwrap_or(Value::Null))
        }
        Err(e) => panic!("upload: {e}"),
    }
}

/// Every path under the root with its content (or a mark for directories
/// and links), to compare before and after.
fn snapshot(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("readable").flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .display()
                .to_string();
            let kind = entry.file_type().expect("a type");
            if kind.is_symlink() {
                out.insert(rel, b"<link>".to_vec());
            } else if kind.is_dir() {
                out.insert(rel, b"<dir>".to_vec());
                walk(&path, root, out);
            } else {
                out.insert(rel, std::fs::read(&path).expect("readable"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

const GOOD: &[u8] = b"def test_uploaded():\n    assert sum([1, 2]) == 3\n";

#[test]
fn uploaded_files_land_in_existing_or_new_directories_and_run() {
    let tests = TestsDir::with(&[("smoke/test_a.py", "def test_a():\n    pass\n")]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, file) = upload(
        &app,
        &[
            Part::Text("directory", "smoke"),
            Part::File("test_up.py", GOOD),
        ],
    );
    assert_eq!(status, 201, "{file}");
    assert_eq!(file["path"], "smoke/test_up.py");
    assert_eq!(file["directory"], "smoke");
    assert_eq!(file["name"], "test_up.py");
    assert_eq!(file["size"], GOOD.len());

    let (status, nested) = upload(
        &app,
        &[
            Part::File("payments_test.py", GOOD),
            Part::Text("directory", "uploads/payments/v2"),
        ],
    );
    assert_eq!(status, 201, "{nested}");
    assert_eq!(nested["path"], "uploads/payments/v2/payments_test.py");
    let on_disk =
        std::fs::read(tests.path().join("uploads/payments/v2/payments_test.py")).expect("written");
    assert_eq!(on_disk, GOOD);
    let (_, catalog) = app.get("/api/tests");
    assert!(catalog["directories"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d == "uploads/payments/v2"));

    let (status, root_file) = upload(
        &app,
        &[
            Part::Text("directory", ""),
            Part::File("test_root.py", GOOD),
        ],
    );
    assert_eq!(status, 201, "{root_file}");
    assert_eq!(root_file["path"], "test_root.py");

    let id = app.create_run("uma", 30, &["uploads/payments/v2/payments_test.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{run}");
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    assert_eq!(
        cases[0]["nodeid"],
        "uploads/payments/v2/payments_test.py::test_uploaded"
    );
    assert_eq!(cases[0]["outcome"], "passed");
}

#[test]
fn refused_uploads_answer_4xx_and_leave_the_tests_root_unchanged() {
    let outside = tempfile::tempdir().expect("a directory outside");
    let tests = TestsDir::with(&[("smoke/test_a.py", "def test_a():\n    pass\n")]);
    std::os::unix::fs::symlink(outside.path(), tests.path().join("escape")).expect("a symlink");
    let app = TestApp::spawn(&tests, &[("UPLOAD_MAX_BYTES", "1000")]);
    let before = snapshot(tests.path());
    let over_limit = [b"#".repeat(1000), b"\n".to_vec()].concat();
    let exactly_limit = {
        let mut source = b"def test_big():\n    pass\n".to_vec();
        source.resize(1000, b'#');
        source
    };

    let refusals: Vec<(&str, Vec<Part>, u16, &str)> = vec![
        (
            "../x.py as name",
            vec![
                Part::Text("directory", "smoke"),
                Part::File("../test_x.py", GOOD),
            ],
            422,
            "file",
        ),
        (
            "absolute directory",
            vec![
                Part::Text("directory", "/etc"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "escaping directory",
            vec![
                Part::Text("directory", "a/../../x"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "backslash directory",
            vec![
                Part::Text("directory", "a\\b"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "backslash name",
            vec![Part::File("a\\test_x.py", GOOD)],
            422,
            "file",
        ),
        (
            "NUL in directory",
            vec![
                Part::Text("directory", "a\0b"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "symlink out of the root",
            vec![
                Part::Text("directory", "escape/sub"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "empty name",
            vec![Part::Text("directory", "smoke"), Part::File("", GOOD)],
            422,
            "file",
        ),
        (
            "not a test name",
            vec![Part::File("notatest.py", GOOD)],
            422,
            "file",
        ),
        (
            "not Python",
            vec![Part::File("test_x.txt", GOOD)],
            422,
            "file",
        ),
        (
            "too deep",
            vec![
                Part::Text("directory", "a/b/c/d/e"),
                Part::File("test_x.py", GOOD),
            ],
            422,
            "directory",
        ),
        (
            "one byte over",
            vec![
                Part::Text("directory", "new"),
                Part::File("test_big.py", &over_limit),
            ],
            413,
            "",
        ),
        (
            "no file part",
            vec![Part::Text("directory", "new")],
            422,
            "file",
        ),
        (
            "syntax error",
            vec![
                Part::Text("directory", "new"),
                Part::File("test_bad.py", b"def test_ok():\n    pass\n\ndef broken(:\n"),
            ],
            422,
            "file",
        ),
        (
            "existing name",
            vec![
                Part::Text("directory", "smoke"),
                Part::File("test_a.py", GOOD),
            ],
            409,
            "",
        ),
    ];
    for (what, parts, status, field) in refusals {
        let answer = upload(&app, &parts);
        assert_eq!(answer.0, status, "{what}: {}", answer.1);
        assert!(
            answer.1["error"]["code"].is_string(),
            "{what}: JSON error body {}",
            answer.1
        );
        if !field.is_empty() {
            assert!(
                answer.1["error"]["fields"][field].is_string(),
                "{what}: names {field}: {}",
                answer.1
            );
        }
        assert_eq!(
            snapshot(tests.path()),
            before,
            "{what} changed the tests root"
        );
    }
    let syntax = upload(
        &app,
        &[Part::File(
            "test_bad.py",
            b"x = 1\n\ndef broken(:\n    pass\n",
        )],
    );
    let message = syntax.1["error"]["fields"]["file"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("line 3"),
        "the syntax error names its line: {message}"
    );

    let wrong_type = app.post_raw("/api/tests", "application/json", "{}");
    assert_error(&wrong_type, 400, "bad_request");
    assert!(
        std::fs::read_dir(outside.path())
            .expect("readable")
            .next()
            .is_none(),
        "nothing escaped"
    );
    assert_eq!(snapshot(tests.path()), before);

    let (status, _) = upload(
        &app,
        &[
            Part::Text("directory", "new"),
            Part::File("test_big.py", &exactly_limit),
        ],
    );
    assert_eq!(status, 201, "a file of exactly the limit is fine");
}

#[test]
fn overwrite_replaces_an_existing_file() {
    let tests = TestsDir::with(&[("smoke/test_a.py", "def test_a():\n    pass\n")]);
    let app = TestApp::spawn(&tests, &[]);
    let (status, _) = upload(
        &app,
        &[
            Part::Text("directory", "smoke"),
            Part::Text("overwrite", "true"),
            Part::File("test_a.py", GOOD),
        ],
    );
    assert_eq!(status, 201);
    assert_eq!(
        std::fs::read(tests.path().join("smoke/test_a.py")).expect("file"),
        GOOD
    );
}

#[test]
fn of_two_concurrent_uploads_of_one_new_name_exactly_one_wins_whole() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let first: Vec<u8> = [
        b"def test_first():\n    pass\n".to_vec(),
        b"# a\n".repeat(20_000),
    ]
    .concat();
    let second: Vec<u8> = [
        b"def test_second():\n    pass\n".to_vec(),
        b"# b\n".repeat(20_000),
    ]
    .concat();
    for round in 0..5 {
        let name = format!("test_race_{round}.py");
        let answers: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = [&first, &second]
                .into_iter()
                .map(|content| {
                    let (app, name) = (&app, &name);
                    scope.spawn(move || {
                        upload(
                            app,
                            &[Part::Text("directory", "race"), Part::File(name, content)],
                        )
                        .0
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("answered"))
                .collect()
        });
        let mut sorted = answers.clone();
        sorted.sort();
        assert_eq!(sorted, [201, 409], "round {round}");
        let on_disk = std::fs::read(tests.path().join("race").join(&name)).expect("written");
        assert!(
            on_disk == first || on_disk == second,
            "the file is one of the two, whole"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(tests.path().join("race"))
        .expect("readable")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files are left behind");
}

#[test]
fn deleting_a_file_named_by_a_queued_run_is_refused() {
    let tests = TestsDir::with(&[
        (
            "test_hold.py",
            "import time\n\ndef test_hold():\n    time.sleep(2)\n",
        ),
        ("dir/test_named.py", "def test_named():\n    pass\n"),
        ("dir/test_free.py", "def test_free():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let holder = app.create_run("vic", 31, &["test_hold.py"]);
    let queued = app.create_run("vic", 31, &["dir"]);
    assert_error(&app.delete("/api/tests/dir/test_named.py"), 409, "conflict");
    assert!(tests.path().join("dir/test_named.py").exists());
    app.post(
        &format!("/api/runs/{queued}/cancel"),
        &serde_json::json!({}),
    );
    let (status, _) = app.delete("/api/tests/dir/test_free.py");
    assert_eq!(status, 204);
    assert!(!tests.path().join("dir/test_free.py").exists());
    assert_error(&app.delete("/api/tests/dir/test_free.py"), 404, "not_found");
    assert_error(&app.delete("/api/tests/../etc/passwd"), 404, "not_found");
    app.wait_finished(holder, SECS_30);
}

#[test]
fn a_file_is_never_deleted_under_a_run_created_at_the_same_moment() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let mut created_first = 0;
    let mut deleted_first = 0;
    for round in 0..20 {
        let path = format!("race/test_round_{round}.py");
        tests.write(&path, "def test_it():\n    pass\n");
        let start = std::sync::Barrier::new(2);
        let ((run_status, run), (delete_status, deleted)) = std::thread::scope(|scope| {
            let create = scope.spawn(|| {
                start.wait();
                app.post(
                    "/api/runs",
                    &serde_json::json!({
                        "username": "ray", "environment_id": 60 + round % 10, "paths": [path],
                    }),
                )
            });
            let delete = scope.spawn(|| {
                start.wait();
                app.delete(&format!("/api/tests/{path}"))
            });
            (create.join().unwrap(), delete.join().unwrap())
        });
        match (run_status, delete_status) {
            // The run came first: the file stays while it needs it.
            (201, 409) => {
                created_first += 1;
                assert!(tests.path().join(&path).exists());
                let id = run["id"].as_i64().expect("id");
                assert_eq!(app.wait_finished(id, SECS_30)["status"], "success");
            }
            // The deletion came first: the run is refused, naming the path.
            (422, 204) => {
                deleted_first += 1;
                assert_error(&(run_status, run.clone()), 422, "validation");
                assert!(run["error"]["fields"]["paths"].is_string(), "{run}");
            }
            other => panic!("round {round}: {other:?}: {run} / {deleted}"),
        }
    }
    assert_eq!(created_first + deleted_first, 20);
}

#[test]
fn a_file_is_in_use_when_a_run_names_it_a_node_id_in_it_or_a_directory_holding_it() {
    let tests = TestsDir::with(&[
        (
            "test_hold.py",
            "import time\n\ndef test_hold():\n    time.sleep(3)\n",
        ),
        ("smoke/test_a.py", "def test_a():\n    pass\n"),
        ("smoke/test_b.py", "def test_b():\n    pass\n"),
        ("smo/test_c.py", "def test_c():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let holder = app.create_run("vic", 32, &["test_hold.py"]);
    for named in [
        "smoke",
        "smoke/",
        "smoke/test_a.py",
        "smoke/test_a.py::test_a",
    ] {
        let queued = app.create_run("vic", 32, &[named]);
        assert_error(&app.delete("/api/tests/smoke/test_a.py"), 409, "conflict");
        app.post(
            &format!("/api/runs/{queued}/cancel"),
            &serde_json::json!({}),
        );
    }
    // A name that only begins like it, or another file: not in use.
    let queued = app.create_run("vic", 32, &["smo", "smoke/test_b.py"]);
    let (status, body) = app.delete("/api/tests/smoke/test_a.py");
    assert_eq!(status, 204, "{body}");
    app.post(
        &format!("/api/runs/{queued}/cancel"),
        &serde_json::json!({}),
    );
    app.wait_finished(holder, SECS_30);
}
