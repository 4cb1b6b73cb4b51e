//! Hostile pages, clients and tests: no web page can make the service
//! change anything, no upload or source can hurt it, tests cannot read its
//! secrets, and no process it runs, restarts or loses is mistaken for
//! another.

use serde_json::Value;

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
