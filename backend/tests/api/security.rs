//! Hostile pages, clients and tests: no web page can make the service
//! change anything, no upload or source can hurt it, tests cannot read its
//! secrets, and no process it runs, restarts or loses is mistaken for
//! another.

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::*;

const QUICK: &str = "def test_quick():\n    assert 1 + 1 == 2\n";

/// A request with headers of the test's choosing (a browser's, a proxy's).
fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value, ureq::Response) {
    let mut request = ureq::request(method, &app.url(path));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let result = match body {
        Some((content_type, bytes)) => request.set("Content-Type", content_type).send_bytes(&bytes),
        None => request.call(),
    };
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            let status = response.status();
            let head = clone_head(&response);
            let text = response.into_string().unwrap_or_default();
            let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
            (status, body, head)
        }
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

/// The status and headers of an answer, without its body.
fn clone_head(response: &ureq::Response) -> ureq::Response {
    let mut head = format!("HTTP/1.1 {} x\r\n", response.status());
    for name in response.headers_names() {
        for value in response.all(&name) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str("\r\n");
    head.parse().expect("a response head")
}

/// A multipart upload of one file.
fn upload_form(directory: &str, name: &str, content: &[u8], overwrite: bool) -> (String, Vec<u8>) {
    let boundary = "----security-test-boundary";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    };
    text("directory", directory);
    if overwrite {
        text("overwrite", "true");
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: text/x-python\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(
    app: &TestApp,
    directory: &str,
    name: &str,
    content: &[u8],
) -> (u16, Value, ureq::Response) {
    let (content_type, body) = upload_form(directory, name, content, false);
    send(app, "POST", "/api/tests", &[], Some((&content_type, body)))
}

#[test]
fn uploads_into_directories_the_catalog_hides_are_refused() {
    let tests = TestsDir::with(&[("smoke/test_a.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[]);
    for directory in [
        "__pycache__",
        "site-packages",
        "node_modules",
        "venv",
        "uploads/site-packages",
        "a/__pycache__/b",
        ".hidden",
    ] {
        let (status, body, _) = upload(&app, directory, "test_hidden.py", QUICK.as_bytes());
        assert_eq!(status, 422, "{directory}: {body}");
        assert!(
            body["error"]["fields"]["directory"].is_string(),
            "{directory}: {body}"
        );
    }
    let catalog = app.get("/api/tests").1;
    assert_eq!(catalog["files"].as_array().unwrap().len(), 1);
    let left: Vec<_> = walk(tests.path());
    assert_eq!(left, ["smoke", "smoke/test_a.py"], "nothing was written");
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn sources_too_deep_or_large_for_the_compiler_are_a_validation_error() {
    let tests = TestsDir::with(&[]);
    let app = TestApp::spawn(&tests, &[]);
    let deep_unary = format!("x = {}1\n", "-".repeat(100_000));
    let long_sum = format!("x = {}\n", vec!["1"; 150_000].join("+"));
    let parens = "(".repeat(200_000);
    for (name, source) in [
        ("test_unary.py", deep_unary),
        ("test_sum.py", long_sum),
        ("test_parens.py", parens),
    ] {
        let (status, body, _) = upload(&app, "", name, source.as_bytes());
        assert_eq!(status, 422, "{name}: {body}");
        let why = body["error"]["fields"]["file"].as_str().unwrap_or_default();
        assert!(!why.is_empty(), "{name}: {body}");
    }
    assert!(walk(tests.path()).is_empty());
    assert!(!app.service_log().contains("panicked"));
}

/// Syntax-check interpreters that are children of `pid`.
fn checks_running(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|entry| {
            let dir = entry.path();
            let parent = std::fs::read_to_string(dir.join("stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            parent == Some(pid)
                && std::fs::read(dir.join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains("compile(open("))
        })
        .count()
}

#[test]
fn syntax_checks_run_a_few_at_a_time_and_the_rest_are_asked_to_retry() {
    let tests = TestsDir::with(&[]);
    let app = Arc::new(TestApp::spawn(&tests, &[]));
    let capacity = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
    // Valid, but a few seconds of compiling each.
    let heavy = "x = 1\n".repeat(150_000);
    let uploads: Vec<_> = (0..capacity * 3)
        .map(|i| {
            let (app, heavy) = (Arc::clone(&app), heavy.clone());
            std::thread::spawn(move || {
                upload(
                    &app,
                    "heavy",
                    &format!("test_heavy_{i}.py"),
                    heavy.as_bytes(),
                )
            })
        })
        .collect();
    let mut most = 0;
    while uploads.iter().any(|u| !u.is_finished()) {
        most = most.max(checks_running(app.pid()));
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers: Vec<_> = uploads.into_iter().map(|u| u.join().unwrap()).collect();
    assert!(
        most <= capacity,
        "{most} checks at once, more than {capacity}"
    );
    assert!(most > 0, "the checks were seen");
    for (status, body, head) in &answers {
        match status {
            201 => {}
            429 => {
                assert_eq!(body["error"]["code"], "too_many", "{body}");
                assert!(head.header("retry-after").is_some());
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(answers.iter().any(|a| a.0 == 201), "some got through");
}
