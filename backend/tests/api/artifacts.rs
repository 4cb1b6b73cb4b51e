//! Artifacts: what tests leave in `TEST_ARTIFACTS_DIR` is kept with the
//! run, up to `ARTIFACTS_MAX_BYTES`, and served as attachments.

use serde_json::{json, Value};
use std::cell::RefCell;
use std::io::Read;
use std::time::Duration;

use crate::helpers::*;

/// The cap the tests run with: 300 000 bytes a run.
const CAP: &str = "300000";

/// Leaves a binary file holding every byte value, a PNG, a text file in a
/// subdirectory, a file of 200 000 bytes that fits and one of 150 000
/// that does not fit after it; names the PNG as its test's attachment.
const LEAVES_FILES: &str = r#"import os
from pathlib import Path

ROOT = Path(os.environ["TEST_ARTIFACTS_DIR"])

def test_binary_and_text():
    (ROOT / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (ROOT / "notes").mkdir()
    (ROOT / "notes" / "report.txt").write_text("all good\n")
    (ROOT / "page.html").write_text("<script>alert(1)</script>")

def test_screenshot():
    png = b"\x89PNG\r\n\x1a\n" + bytes(100)
    (ROOT / "shot.png").write_bytes(png)
    print("[[ATTACHMENT|shot.png]]")
    print("[[ATTACHMENT|" + str(ROOT / "notes" / "report.txt") + "]]")

def test_large_files():
    (ROOT / "large-a.bin").write_bytes(bytes([7]) * 200_000)
    (ROOT / "large-b.bin").write_bytes(bytes([9]) * 150_000)
"#;

fn download(app: &TestApp, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let response = match agent_request("GET", &app.url(path)).call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|name| {
            let value = response.header(&name).unwrap_or_default().to_string();
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(10 << 20)
        .read_to_end(&mut body)
        .unwrap();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn artifacts_are_kept_up_to_the_cap_and_served_byte_exact_as_attachments() {
    let tests = TestsDir::with(&[("test_files.py", LEAVES_FILES)]);
    let app = TestApp::spawn(&tests, &[("ARTIFACTS_MAX_BYTES", CAP)]);
    let id = app.create_run("art", 4, &["test_files.py"]);
    let run = app.wait_finished(id, Duration::from_secs(30));
    assert_eq!(run["status"], "success", "{run}");

    let (status, list) = app.get(&format!("/api/runs/{id}/artifacts"));
    assert_eq!(status, 200, "{list}");
    let listed: Vec<(String, i64, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["path"].as_str().unwrap().to_string(),
                a["size"].as_i64().unwrap(),
                a["content_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("blob.bin", 1024, "application/octet-stream"),
        ("large-a.bin", 200_000, "application/octet-stream"),
        ("notes/report.txt", 9, "text/plain; charset=utf-8"),
        ("page.html", 25, "text/html; charset=utf-8"),
        ("shot.png", 108, "image/png"),
    ];
    let expected: Vec<(String, i64, String)> = expected
        .iter()
        .map(|(p, s, c)| (p.to_string(), *s, c.to_string()))
        .collect();
    assert_eq!(listed, expected, "the second large file is over the cap");
    let total: i64 = listed.iter().map(|(_, size, _)| size).sum();
    assert!(total <= 300_000);

    // The log says which file was not kept, and why.
    let log = plain(&app.log_text(id));
    assert!(
        log.contains("large-b.bin (150000 bytes) not kept: over ARTIFACTS_MAX_BYTES"),
        "{log}"
    );

    // Byte-exact, with its type, as an attachment that is never sniffed.
    let (status, headers, body) = download(&app, &format!("/api/runs/{id}/artifacts/blob.bin"));
    assert_eq!(status, 200);
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    assert_eq!(body, every_byte);
    assert_eq!(header(&headers, "content-type"), "application/octet-stream");
    assert!(header(&headers, "content-disposition").starts_with("attachment"));
    assert!(header(&headers, "content-disposition").contains("blob.bin"));
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");

    let (status, headers, body) = download(&app, &format!("/api/runs/{id}/artifacts/large-a.bin"));
    assert_eq!(status, 200);
    assert_eq!(body.len(), 200_000, "a file over a chunk comes back whole");
    assert!(body.iter().all(|b| *b == 7));
    assert_eq!(header(&headers, "content-length"), "200000");

    let (_, headers, body) = download(&app, &format!("/api/runs/{id}/artifacts/notes/report.txt"));
    assert_eq!(body, b"all good\n");
    assert_eq!(
        header(&headers, "content-type"),
        "text/plain; charset=utf-8"
    );

    // Hostile HTML is served inert: an attachment in a sandbox.
    let (_, headers, _) = download(&app, &format!("/api/runs/{id}/artifacts/page.html"));
    assert!(header(&headers, "content-disposition").starts_with("attachment"));
    assert!(header(&headers, "content-security-policy").contains("sandbox"));

    // Outside the run's artifacts, or not there: refused, not found.
    for path in [
        "..%2F..%2Fetc%2Fpasswd",
        "notes%2F..%2F..%2Fx",
        "%2Fetc%2Fpasswd",
    ] {
        let (status, _, body) = download(&app, &format!("/api/runs/{id}/artifacts/{path}"));
        assert!(
            status == 400 || status == 404,
            "{path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert!(error["error"]["code"].is_string());
    }
    assert_error(
        &app.get(&format!("/api/runs/{id}/artifacts/large-b.bin")),
        404,
        "not_found",
    );
    assert_error(&app.get("/api/runs/999999/artifacts"), 404, "not_found");
    assert_error(
        &app.get("/api/runs/999999/artifacts/x.png"),
        404,
        "not_found",
    );

    // The attachment line links the file to its test; a whole path inside
    // the artifacts directory names the same file.
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    let case = |name: &str| -> Value {
        cases
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["nodeid"].as_str().unwrap().ends_with(name))
            .cloned()
            .unwrap()
    };
    assert_eq!(
        case("test_screenshot")["attachments"],
        json!(["notes/report.txt", "shot.png"])
    );
    assert_eq!(case("test_binary_and_text")["attachments"], json!([]));

    // The JUnit export carries the attachment for CI servers.
    let (status, _, xml) = app.get_text(&format!("/api/runs/{id}/junit.xml"));
    assert_eq!(status, 200);
    assert!(xml.contains("test_screenshot"), "{xml}");
}

#[test]
fn each_run_gets_a_fresh_directory_and_a_run_without_files_has_none() {
    let leaves = "import os\nfrom pathlib import Path\n\n\
def test_count():\n    root = Path(os.environ['TEST_ARTIFACTS_DIR'])\n    \
assert root.is_dir() and not any(root.iterdir()), 'a fresh, empty directory'\n    \
(root / 'left.txt').write_text('x')\n";
    let tests = TestsDir::with(&[
        ("test_fresh.py", leaves),
        ("test_none.py", "def test_a():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    for _ in 0..2 {
        let id = app.create_run("art", 5, &["test_fresh.py"]);
        let run = app.wait_finished(id, Duration::from_secs(30));
        assert_eq!(run["status"], "success", "{}", app.log_text(id));
        let (_, list) = app.get(&format!("/api/runs/{id}/artifacts"));
        assert_eq!(list.as_array().unwrap().len(), 1);
    }
    let id = app.create_run("art", 5, &["test_none.py"]);
    app.wait_finished(id, Duration::from_secs(30));
    let (status, list) = app.get(&format!("/api/runs/{id}/artifacts"));
    assert_eq!((status, list), (200, json!([])));
    assert!(!plain(&app.log_text(id)).contains("artifacts:"));
}

#[test]
fn a_finished_runs_directory_is_removed_also_when_its_finish_starts_the_next_run() {
    // Each run prints where its directory is, and leaves a file there.
    let leaves = "import os\nfrom pathlib import Path\n\n\
def test_leave():\n    root = Path(os.environ['TEST_ARTIFACTS_DIR'])\n    \
print('directory=' + str(root) + '=')\n    (root / 'left.txt').write_text('x')\n";
    let tests = TestsDir::with(&[("test_leave.py", leaves)]);
    let app = TestApp::spawn(&tests, &[]);
    // Queued at once on one environment: each finish but the last hands
    // the environment straight on to the next run.
    let ids: Vec<i64> = (0..3)
        .map(|_| app.create_run("art", 6, &["test_leave.py"]))
        .collect();
    for id in &ids {
        let run = app.wait_finished(*id, Duration::from_secs(30));
        assert_eq!(run["status"], "success", "{}", app.log_text(*id));
    }
    for id in &ids {
        let directory = printed_directory(&app, *id)
            .unwrap_or_else(|| panic!("run {id} printed no directory: {}", app.log_text(*id)));
        let (_, list) = app.get(&format!("/api/runs/{id}/artifacts"));
        assert_eq!(list.as_array().unwrap().len(), 1, "run {id}: {list}");
        eventually(
            Duration::from_secs(10),
            "every run's directory is removed",
            || !directory.exists(),
        );
    }
}

/// The directory run `id` printed as `directory=<path>=`, if it did.
fn printed_directory(app: &TestApp, id: i64) -> Option<std::path::PathBuf> {
    let log = plain(&app.log_text(id));
    log.split("directory=")
        .nth(1)
        .and_then(|rest| rest.split('=').next())
        .map(std::path::PathBuf::from)
}

/// Names in `runtime` (the service's runtime directory) of run `id`'s
/// setup: its artifacts directory, its socket and its files.
fn setup_names(runtime: &std::path::Path, id: i64) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(runtime) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.starts_with(&format!("artifacts-{id}-")) || name.starts_with(&format!("run-{id}-"))
        })
        .collect()
}

/// The service's runtime directory, once run `next` is set up there
/// ahead of its claim, while run `lingering` (of [`lingers`]) waits to
/// exit: the directory is where `lingering`'s own one is.
fn runtime_once_set_up_ahead(app: &TestApp, lingering: i64, next: i64) -> std::path::PathBuf {
    let directory = RefCell::new(None);
    eventually(
        Duration::from_secs(30),
        "the lingering run prints its directory",
        || {
            *directory.borrow_mut() = printed_directory(app, lingering);
            directory.borrow().is_some()
        },
    );
    let runtime = directory.take().unwrap().parent().unwrap().to_path_buf();
    eventually(
        Duration::from_secs(30),
        "the run queued next is set up before the lingering one exits",
        || setup_names(&runtime, next).len() >= 2,
    );
    runtime
}

/// A test file whose test prints where its run's directory is.
const PRINTS_DIRECTORY: &str = "import os\n\ndef test_where():\n    \
print('directory=' + os.environ['TEST_ARTIFACTS_DIR'] + '=')\n";

/// A test file whose interpreter, once pytest is done, waits (an atexit
/// handler) until file `flag` exists next to it; its test prints where
/// its run's directory is.
fn lingers(flag: &str) -> String {
    format!(
        "import atexit, time\nfrom pathlib import Path\n\n\
FLAG = Path(__file__).parent / '{flag}'\n\n\
def linger():\n    for _ in range(2400):\n        if FLAG.exists():\n            return\n        \
time.sleep(0.05)\n\natexit.register(linger)\n\n{PRINTS_DIRECTORY}"
    )
}

#[test]
fn the_next_run_is_set_up_while_the_one_before_exits_and_a_wrong_guess_leaves_nothing() {
    // A lingering run's interpreter waits after pytest is done (an atexit
    // handler) until the flag its test names exists; every run prints
    // where its directory is.
    let tests = TestsDir::with(&[
        ("test_first.py", &lingers("first-go")),
        ("test_second.py", &lingers("second-go")),
        ("test_print.py", PRINTS_DIRECTORY),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("art", 8, &["test_first.py"]);
    let cancelled = app.create_run("art", 8, &["test_print.py"]);
    let second = app.create_run("art", 8, &["test_second.py"]);
    let last = app.create_run("art", 8, &["test_print.py"]);

    // pytest is done, its interpreter waits: the run queued next is set up.
    let runtime = runtime_once_set_up_ahead(&app, first, cancelled);
    assert_eq!(app.run(first)["status"], "running");
    // It is cancelled before the finish: the finish hands on past it.
    let (status, run) = app.post(&format!("/api/runs/{cancelled}/cancel"), &json!({}));
    assert_eq!((status, run["status"].as_str()), (200, Some("cancelled")));
    tests.write("first-go", "");
    eventually(
        Duration::from_secs(30),
        "the second run prints its directory",
        || printed_directory(&app, second).is_some(),
    );
    assert_eq!(
        app.run(first)["status"],
        "success",
        "{}",
        app.log_text(first)
    );
    eventually(
        Duration::from_secs(10),
        "what was set up for the cancelled run is removed",
        || setup_names(&runtime, cancelled).is_empty(),
    );
    // This time the guess holds: the directory made ahead is the one the
    // last run is given.
    let made_ahead = RefCell::new(Vec::new());
    eventually(
        Duration::from_secs(30),
        "the last run is set up before the second one exits",
        || {
            *made_ahead.borrow_mut() = setup_names(&runtime, last);
            made_ahead
                .borrow()
                .iter()
                .any(|name| name.starts_with("artifacts-"))
        },
    );
    let made_ahead = made_ahead
        .take()
        .into_iter()
        .find(|name| name.starts_with("artifacts-"))
        .unwrap();
    tests.write("second-go", "");
    let run = app.wait_finished(last, Duration::from_secs(30));
    assert_eq!(run["status"], "success", "{}", app.log_text(last));
    assert_eq!(app.run(second)["status"], "success");
    assert_eq!(
        printed_directory(&app, last),
        Some(runtime.join(made_ahead))
    );
    assert_eq!(app.run(cancelled)["status"], "cancelled");
    eventually(
        Duration::from_secs(10),
        "nothing of any run is left",
        || {
            [first, cancelled, second, last]
                .iter()
                .all(|id| setup_names(&runtime, *id).is_empty())
        },
    );
}

#[test]
fn a_file_deleted_after_its_run_was_set_up_ahead_ends_that_run_as_an_error() {
    let tests = TestsDir::with(&[
        ("test_first.py", &lingers("first-go")),
        ("test_gone.py", "def test_gone():\n    pass\n"),
    ]);
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("art", 9, &["test_first.py"]);
    let doomed = app.create_run("art", 9, &["test_gone.py"]);
    let runtime = runtime_once_set_up_ahead(&app, first, doomed);
    // Its file goes after its paths were checked ahead: the run still
    // ends as one whose file was deleted after it was queued.
    std::fs::remove_file(tests.path().join("test_gone.py")).unwrap();
    tests.write("first-go", "");
    let run = app.wait_finished(doomed, Duration::from_secs(30));
    assert_eq!(run["status"], "error");
    assert!(
        run["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("test_gone.py") && r.contains("deleted")),
        "{run}"
    );
    assert_eq!(app.run(first)["status"], "success");
    eventually(
        Duration::from_secs(10),
        "nothing of the doomed run is left",
        || setup_names(&runtime, doomed).is_empty(),
    );
}
