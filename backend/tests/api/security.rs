//! Hostile pages, clients and tests: no web page can make the service
//! change anything, no upload or source can hurt it, tests cannot read its
//! secrets, and no process it runs, restarts or loses is mistaken for
//! another.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

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
    // As the suite's agent, unless the test says who it is.
    let mut request = if headers.iter().any(|(name, _)| {
        name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie")
    }) {
        ureq::request(method, &app.url(path))
    } else {
        agent_request(method, &app.url(path))
    };
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

/// A run's body; its user is the caller's (the suite's admin agent).
fn run_json(environment_id: i32, paths: &[&str]) -> Option<(&'static str, Vec<u8>)> {
    let body = json!({"environment_id": environment_id, "paths": paths});
    Some(("application/json", body.to_string().into_bytes()))
}

fn runs_total(app: &TestApp) -> i64 {
    app.get("/api/runs").1["total"].as_i64().expect("a total")
}

fn assert_refused(answer: &(u16, Value, ureq::Response), what: &str) {
    assert_eq!(answer.0, 403, "{what}: {}", answer.1);
    assert_eq!(
        answer.1["error"]["code"], "forbidden",
        "{what}: {}",
        answer.1
    );
    assert_eq!(answer.2.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn cross_site_writes_are_refused_before_anything_is_done() {
    let tests = TestsDir::with(&[("smoke/test_fast.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[]);
    let own = app.base.clone();
    let evil = "https://evil.example";

    // A page elsewhere overwriting a test file: refused, the file unchanged.
    let (content_type, body) =
        upload_form("smoke", "test_fast.py", b"def test_x():\n    pass\n", true);
    let answer = send(
        &app,
        "POST",
        "/api/tests",
        &[("Origin", evil), ("Sec-Fetch-Site", "cross-site")],
        Some((&content_type, body.clone())),
    );
    assert_refused(&answer, "a cross-site upload");
    assert_eq!(
        std::fs::read_to_string(tests.path().join("smoke/test_fast.py")).unwrap(),
        QUICK
    );
    for headers in [
        vec![("Origin", evil)],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site"), ("Origin", own.as_str())],
        // The same host on another scheme is another origin.
        vec![("Origin", &*own.replacen("http://", "https://", 1))],
    ] {
        let answer = send(&app, "POST", "/api/runs", &headers, run_json(3, &["smoke"]));
        assert_refused(&answer, &format!("{headers:?}"));
    }
    assert_eq!(runs_total(&app), 0, "nothing was queued");

    // The service's own pages, and scripts that say nothing, may.
    let answer = send(
        &app,
        "POST",
        "/api/runs",
        &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
        run_json(3, &["smoke"]),
    );
    assert_eq!(answer.0, 201, "{}", answer.1);
    let id = answer.1["id"].as_i64().unwrap();
    let answer = send(
        &app,
        "POST",
        "/api/runs",
        &[("Sec-Fetch-Site", "none")],
        run_json(4, &["smoke"]),
    );
    assert_eq!(answer.0, 201, "typed into the address bar: {}", answer.1);
    let script = app.create_run("ci", 5, &["smoke"]);
    app.wait_finished(id, SECS_30);

    for (method, path) in [
        ("POST", format!("/api/runs/{id}/rerun")),
        ("POST", format!("/api/runs/{script}/cancel")),
        ("DELETE", "/api/tests/smoke/test_fast.py".to_string()),
        ("PUT", "/api/environments/3".to_string()),
        ("DELETE", "/api/environments/3".to_string()),
    ] {
        let body =
            (method == "PUT").then(|| ("application/json", b"{\"name\": \"pwned\"}".to_vec()));
        let answer = send(&app, method, &path, &[("Origin", evil)], body);
        assert_refused(&answer, &format!("{method} {path}"));
    }
    assert_eq!(runs_total(&app), 3, "no re-run was queued");
    assert!(tests.path().join("smoke/test_fast.py").exists());
    assert_eq!(app.get("/api/environments/3").1["name"], "env-3");

    // Reading is not changing: other sites' reads are the browser's to
    // refuse (no CORS), and links and scripts must keep working.
    let answer = send(
        &app,
        "GET",
        "/api/runs",
        &[("Origin", evil), ("Sec-Fetch-Site", "cross-site")],
        None,
    );
    assert_eq!(answer.0, 200);
    assert_eq!(answer.2.header("access-control-allow-origin"), None);
}

#[test]
fn behind_a_proxy_the_public_url_and_forwarded_scheme_are_the_service_s_own() {
    let tests = TestsDir::with(&[("test_quick.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[("PUBLIC_URL", "https://executor.example/")]);
    let create = |headers: &[(&str, &str)]| {
        send(
            &app,
            "POST",
            "/api/runs",
            headers,
            run_json(6, &["test_quick.py"]),
        )
        .0
    };
    assert_eq!(create(&[("Origin", "https://executor.example")]), 201);
    assert_eq!(create(&[("Origin", "http://executor.example")]), 403);
    assert_eq!(
        create(&[("Origin", "https://executor.example.evil.example")]),
        403
    );
    // A proxy that passes the browser's Host and its scheme.
    let proxied = [
        ("Host", "web.internal:8443"),
        ("X-Forwarded-Proto", "https"),
        ("Origin", "https://web.internal:8443"),
    ];
    assert_eq!(create(&proxied), 201);
    assert_eq!(
        create(&[
            ("Host", "web.internal:8443"),
            ("Origin", "https://web.internal:8443")
        ]),
        403
    );
}

#[test]
fn with_allowed_hosts_a_rebound_host_name_gets_nothing() {
    let tests = TestsDir::with(&[("test_quick.py", QUICK)]);
    let app = TestApp::spawn(
        &tests,
        &[("ALLOWED_HOSTS", "executor.example, other.example:8000")],
    );
    let get = |headers: &[(&str, &str)]| send(&app, "GET", "/api/runs", headers, None);
    // A page on evil.example whose name now points at this machine is
    // same-origin with its own requests: only the Host gives it away.
    let rebound = get(&[("Host", "evil.example:8080")]);
    assert_refused(&rebound, "a rebound name");
    assert!(rebound.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ALLOWED_HOSTS"));
    assert_refused(&get(&[("Host", "other.example:9000")]), "another port");
    assert_refused(
        &get(&[
            ("Host", "executor.example"),
            ("X-Forwarded-Host", "evil.example"),
        ]),
        "a forwarded name",
    );
    let answer = send(
        &app,
        "POST",
        "/api/runs",
        &[
            ("Host", "evil.example:8080"),
            ("Origin", "http://evil.example:8080"),
        ],
        run_json(7, &["test_quick.py"]),
    );
    assert_refused(&answer, "a rebound write");
    for host in [
        "executor.example",
        "EXECUTOR.example:8080",
        "other.example:8000",
        "localhost:1",
        "127.0.0.1",
        "[::1]:80",
    ] {
        assert_eq!(get(&[("Host", host)]).0, 200, "{host}");
    }
    assert_eq!(app.get("/api/health").0, 200, "the address it listens on");
    assert_eq!(runs_total(&app), 0);
}

#[test]
fn answers_are_never_sniffed_framed_or_shown_inline() {
    let tests = TestsDir::with(&[("test_quick.py", QUICK)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("carol", 8, &["test_quick.py"]);
    assert_eq!(app.wait_finished(id, SECS_30)["status"], "success");
    for path in [
        "/api/runs".to_string(),
        "/api/health".into(),
        "/api/no/such/thing".into(),
        format!("/api/runs/{id}/log.txt"),
        format!("/api/runs/{id}/junit.xml"),
        "/api/tests/test_quick.py".into(),
    ] {
        let (_, _, head) = send(&app, "GET", &path, &[], None);
        assert_eq!(
            head.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        let csp = head.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(head.header("referrer-policy").is_some(), "{path}");
    }
    for (path, name) in [
        (
            format!("/api/runs/{id}/log.txt"),
            format!("run-{id}.log.txt"),
        ),
        (
            format!("/api/runs/{id}/junit.xml"),
            format!("run-{id}.junit.xml"),
        ),
    ] {
        let (status, _, head) = send(&app, "GET", &path, &[], None);
        assert_eq!(status, 200);
        let disposition = head.header("content-disposition").unwrap_or_default();
        assert!(
            disposition.starts_with("attachment") && disposition.contains(&name),
            "{path}: {disposition}"
        );
    }
}

// --- tests cannot reach the service's secrets --------------------------------

/// Stands in for pytest where only the system's python3 is there (or
/// readable): runs the `test_*` functions of the files after `--`.
const FAKE_PYTEST: &str = r#"import runpy, sys, traceback
paths = sys.argv[sys.argv.index("--") + 1:]
failed = 0
for path in paths:
    for name, test in runpy.run_path(path).items():
        if name.startswith("test_") and callable(test):
            try:
                test()
                print(f"{path}::{name} PASSED")
            except Exception:
                traceback.print_exc()
                print(f"{path}::{name} FAILED")
                failed += 1
sys.exit(1 if failed else 0)
"#;

/// What a test can see of the service that runs it.
const PEEK: &str = r#"import os

def service_pid():
    # The test's parent is its supervisor, whose parent is the service.
    with open(f"/proc/{os.getppid()}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])

def test_the_service_s_environment_is_out_of_reach():
    pid = service_pid()
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "test-executor"
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            environ = f.read()
    except PermissionError:
        print("the service's environment is out of reach")
        return
    assert b"DATABASE_URL" not in environ, "read the service's environment"
"#;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// nobody's ids, for starting things as another user when the suite runs
/// as root.
const NOBODY: u32 = 65534;

/// The interpreter the tests use: as root, the system's, which nobody
/// can run (an interpreter under /root could not be).
fn python() -> &'static str {
    if is_root() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// A tests root anybody may read.
fn shared_tests(files: &[(&str, &str)]) -> TestsDir {
    let tests = TestsDir::with(files);
    std::fs::set_permissions(tests.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    tests
}

/// A service started from a command the test shaped itself.
struct Started {
    child: Child,
    base: String,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Started {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service's command as `TestApp` runs it.
fn service_command(db: &TestDb, tests: &TestsDir, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .env("DATABASE_URL", &db.url)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("TESTS_ROOT", tests.path())
        .env("SCHEDULER_TICK_MS", "200")
        .env("RUST_LOG", "info")
        .env("ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("INSTANCE_ID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Starts the service; `Err` with its exit status and log if it stops
/// instead of listening.
fn start(mut command: Command) -> Result<Started, (Option<ExitStatus>, String)> {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("service.log");
    command.stderr(std::fs::File::create(&log_path).unwrap());
    let mut child = command.spawn().expect("the service binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(base) = rx.recv_timeout(Duration::from_millis(50)) {
            return Ok(Started {
                child,
                base,
                log_path,
                _log_dir: log_dir,
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err((
                Some(status),
                std::fs::read_to_string(&log_path).unwrap_or_default(),
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err((None, std::fs::read_to_string(&log_path).unwrap_or_default()));
        }
    }
}

fn wait_finished(base: &str, id: i64) -> Value {
    let deadline = Instant::now() + SECS_30;
    loop {
        let run: Value = agent_request("GET", &format!("{base}/api/runs/{id}"))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {id} did not finish: {run}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn log_of(base: &str, id: i64) -> String {
    agent_request("GET", &format!("{base}/api/runs/{id}/log.txt"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

#[test]
fn tests_run_as_the_service_s_user_cannot_read_its_environment() {
    let tests = shared_tests(&[("pytest.py", FAKE_PYTEST), ("test_peek.py", PEEK)]);
    let db = TestDb::create();
    let mut command = service_command(&db, &tests, &[("PYTHON", python())]);
    // Root may read any process's environment: the point is a service and
    // tests of one ordinary user, so as root, both are nobody.
    if is_root() {
        command.uid(NOBODY).gid(NOBODY);
    }
    let service = start(command).unwrap_or_else(|(_, log)| panic!("did not start:\n{log}"));
    let run: Value = agent_request("POST", &format!("{}/api/runs", service.base))
        .send_json(json!({"environment_id": 9, "paths": ["test_peek.py"]}))
        .unwrap()
        .into_json()
        .unwrap();
    let id = run["id"].as_i64().unwrap();
    let run = wait_finished(&service.base, id);
    let log = log_of(&service.base, id);
    assert_eq!(
        run["status"],
        "success",
        "{log}\nservice log:\n{}",
        service.log()
    );
    assert!(log.contains("out of reach"), "{log}");
}

#[test]
fn with_run_as_user_tests_run_as_that_user_and_read_uploaded_files() {
    if !is_root() {
        eprintln!("skipped: RUN_AS_USER needs the suite to run as root");
        return;
    }
    let mine = r#"import os, pwd

def test_runs_as_nobody_at_home():
    nobody = pwd.getpwnam("nobody")
    assert (os.getuid(), os.geteuid(), os.getgid()) == (nobody.pw_uid,) * 2 + (nobody.pw_gid,)
    assert os.environ["HOME"] == nobody.pw_dir
    assert os.environ["USER"] == "nobody"
    assert "TEST_EXECUTOR_RUN_AS" not in os.environ
    # Started warm, as that user too.
    assert open("/proc/self/cmdline", "rb").read().split(b"\0")[1] == b"-c"
"#;
    let tests = shared_tests(&[
        ("pytest.py", FAKE_PYTEST),
        ("test_peek.py", PEEK),
        ("test_who.py", mine),
    ]);
    let app = TestApp::spawn(&tests, &[("RUN_AS_USER", "nobody"), ("PYTHON", python())]);
    let (status, body, _) = upload(&app, "uploads/new", "test_uploaded.py", QUICK.as_bytes());
    assert_eq!(status, 201, "{body}");
    let id = app.create_run(
        "root",
        10,
        &[
            "test_peek.py",
            "test_who.py",
            "uploads/new/test_uploaded.py",
        ],
    );
    let run = app.wait_finished(id, SECS_30);
    let log = app.log_text(id);
    assert_eq!(run["status"], "success", "{log}");
    assert!(log.contains("test_uploaded.py::test_quick PASSED"), "{log}");
}

#[test]
fn run_as_user_is_refused_unless_the_service_is_root_and_the_user_exists() {
    let tests = shared_tests(&[]);
    let db = TestDb::create();
    let refused = |env: &[(&str, &str)], as_nobody: bool| {
        let mut command = service_command(&db, &tests, env);
        if as_nobody {
            command.uid(NOBODY).gid(NOBODY);
        }
        match start(command) {
            Ok(started) => panic!("it started:\n{}", started.log()),
            Err((status, log)) => {
                assert!(status.is_some_and(|s| !s.success()), "{status:?}");
                log
            }
        }
    };
    let log = refused(&[("RUN_AS_USER", "no-such-user-anywhere")], false);
    if is_root() {
        assert!(
            log.contains("RUN_AS_USER=no-such-user-anywhere: no such user"),
            "{log}"
        );
    }
    // Not root: as nobody when the suite is root, else as ourselves.
    let log = refused(&[("RUN_AS_USER", "nobody")], is_root());
    assert!(
        log.contains("RUN_AS_USER=nobody needs the service to run as root"),
        "{log}"
    );
}

// --- no process or instance mistaken for another ------------------------------

fn slow_tests() -> TestsDir {
    TestsDir::with(&[(
        "test_slow.py",
        "import time\n\ndef test_slow():\n    time.sleep(60)\n",
    )])
}

/// A process in a group of its own, standing for whatever got a recorded
/// group's number later.
fn bystander() -> Child {
    Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap()
}

fn start_ticks(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[19].parse().unwrap()
}

/// What a lease says of its run's process group.
#[derive(QueryableByName)]
struct RecordedGroup {
    #[diesel(sql_type = Nullable<Integer>)]
    pgid: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    boot_id: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    start_ticks: Option<i64>,
}

#[test]
fn a_running_runs_process_group_is_recorded_as_the_one_it_started() {
    let tests = slow_tests();
    let db = TestDb::create();
    let app = TestApp::spawn_on(Arc::clone(&db), &tests, &[("INSTANCE_ID", "recorder")]);
    let id = app.create_run("recorder", 26, &["test_slow.py"]);
    let recorded = || {
        diesel::sql_query(
            "SELECT pgid, boot_id, start_ticks FROM environment_locks WHERE run_id = $1",
        )
        .bind::<BigInt, _>(id)
        .get_result::<RecordedGroup>(&mut db.conn())
        .ok()
        .filter(|group| group.pgid.is_some())
    };
    eventually(SECS_30, "the run's process group recorded", || {
        recorded().is_some()
    });
    let group = recorded().unwrap();
    let pgid = group.pgid.unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert_eq!(group.boot_id.as_deref(), Some(boot.trim()));
    // Its leader's own start time: what a restart checks before it kills.
    assert_eq!(group.start_ticks, Some(start_ticks(pgid as u32)));
    assert_eq!(app.run(id)["status"], "running");
}

#[test]
fn a_restart_kills_only_process_groups_that_are_still_its_own() {
    let tests = slow_tests();
    let db = TestDb::create();
    let env = [
        ("INSTANCE_ID", "phoenix-2"),
        ("LEASE_SECS", "60"),
        ("MAX_PARALLEL_RUNS", "3"),
    ];
    let mut first = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let ids: Vec<i64> = (21..24)
        .map(|e| first.create_run("phoenix", e, &["test_slow.py"]))
        .collect();
    let mut conn = db.conn();
    eventually(SECS_30, "every run has its process group recorded", || {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT count(*) AS n FROM environment_locks WHERE pgid IS NOT NULL")
            .get_result::<Count>(&mut db.conn())
            .is_ok_and(|c| c.n == 3)
    });
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");

    // After a reboot, or once a group is gone, its number may belong to
    // anything: three bystanders take the recorded numbers.
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let boot = boot.trim();
    let mut ours = bystander();
    let mut reused = bystander();
    let mut rebooted = bystander();
    let record = |conn: &mut PgConnection, run_id: i64, child: &Child, boot: &str, ticks: i64| {
        diesel::sql_query(
            "UPDATE environment_locks SET pgid = $1, boot_id = $2, start_ticks = $3 WHERE run_id = $4",
        )
        .bind::<Integer, _>(child.id() as i32)
        .bind::<Nullable<Text>, _>(Some(boot))
        .bind::<Nullable<BigInt>, _>(Some(ticks))
        .bind::<BigInt, _>(run_id)
        .execute(conn)
        .unwrap();
    };
    record(&mut conn, ids[0], &ours, boot, start_ticks(ours.id()));
    record(
        &mut conn,
        ids[1],
        &reused,
        boot,
        start_ticks(reused.id()) - 1,
    );
    record(
        &mut conn,
        ids[2],
        &rebooted,
        "00000000-0000-0000-0000-000000000000",
        start_ticks(rebooted.id()),
    );

    let second = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    for id in &ids {
        assert_eq!(second.run(*id)["status"], "error", "finished at start-up");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(ours.try_wait(), Ok(Some(_))) {
        assert!(
            Instant::now() < deadline,
            "the group still its own was not killed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        matches!(reused.try_wait(), Ok(None)),
        "a reused number is left alone"
    );
    assert!(
        matches!(rebooted.try_wait(), Ok(None)),
        "another boot's number is left alone"
    );
    assert!(second.service_log().contains("not killing process group"));
    for mut child in [reused, rebooted] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_second_live_instance_with_the_same_id_is_refused_and_a_dead_one_s_name_is_free() {
    let tests = slow_tests();
    let db = TestDb::create();
    let env = [("INSTANCE_ID", "twin")];
    let mut first = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let id = first.create_run("twin", 25, &["test_slow.py"]);
    first.wait_run(id, SECS_30, |run| run["status"] == "running");

    match start(service_command(&db, &tests, &env)) {
        Ok(second) => panic!("a second instance named twin started:\n{}", second.log()),
        Err((status, log)) => {
            assert!(status.is_some_and(|s| !s.success()), "{status:?}: {log}");
            assert!(
                log.contains("another live instance uses INSTANCE_ID=twin"),
                "{log}"
            );
        }
    }
    assert_eq!(
        first.run(id)["status"],
        "running",
        "the live instance's run is untouched"
    );

    // Its process gone (and its session with it), the name is free at once.
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5)).expect("killed");
    let restarted = TestApp::spawn_on(Arc::clone(&db), &tests, &env);
    let run = restarted.run(id);
    assert_eq!(run["status"], "error");
    assert!(run["status_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("executor lost")));
}

// --- a runner that panics -------------------------------------------------------

#[test]
fn absurd_durations_are_refused_at_start_rather_than_overflowing_a_clock() {
    let tests = shared_tests(&[]);
    let db = TestDb::create();
    // Once the one way to make a runner panic from outside: a time-out too
    // large to add to a clock reading. A panicking runner is covered by the
    // scheduler's unit tests (`a_panicking_run_thread_…`).
    for (name, value) in [
        ("RUN_TIMEOUT_SECS", "18446744073709551615"),
        ("KILL_GRACE_MS", "18446744073709551615"),
        ("SHUTDOWN_GRACE_SECS", "99999999999"),
    ] {
        match start(service_command(&db, &tests, &[(name, value)])) {
            Ok(started) => panic!("{name}={value} started:\n{}", started.log()),
            Err((status, log)) => {
                assert!(status.is_some_and(|s| !s.success()), "{status:?}");
                assert!(log.contains(&format!("{name} must be at most")), "{log}");
            }
        }
    }
}

/// Python for a test module: `waiting_for_the_next_run()` answers the
/// interpreters the service's spare supervisors started for the next run
/// (the test's own supervisor aside), waiting up to 10 s for one.
const FIND_WAITING: &str = r#"
import os, time

def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            pass
    return found

def waiting_for_the_next_run():
    supervisor = os.getppid()
    service = int(open(f"/proc/{supervisor}/stat").read().rsplit(")", 1)[1].split()[1])
    deadline = time.time() + 10
    waiting = []
    while not waiting and time.time() < deadline:
        spares = [pid for pid in children(service) if pid != supervisor]
        waiting = [pid for spare in spares for pid in children(spare)]
        time.sleep(0.05)
    assert waiting, "an interpreter waits for the next run"
    return waiting
"#;

/// The interpreter a spare started for the next run takes its command
/// through a socket: a test (even one running as root, as here) cannot
/// open it through `/proc` to hand it a command of its own.
#[test]
fn a_test_cannot_hand_a_command_to_the_interpreter_waiting_for_the_next_run() {
    let module = format!(
        "{FIND_WAITING}{}",
        r#"
import errno

def test_reaches_for_the_next_run():
    for pid in waiting_for_the_next_run():
        try:
            open(f"/proc/{pid}/fd/3", "wb").close()
        except OSError as e:
            assert e.errno == errno.ENXIO, e
        else:
            raise AssertionError("the channel of the waiting interpreter was opened")
"#
    );
    let tests = TestsDir::with(&[("test_reach.py", module.as_str())]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("mallory", 15, &["test_reach.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(id));
    // The next run, on the interpreter the test reached for, is its own.
    let next = app.create_run("mallory", 15, &["test_reach.py"]);
    let run = app.wait_finished(next, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(next));
}

/// A test may kill the interpreter waiting for the next run (it runs as
/// the tests' user): that run starts cold and goes on as if nothing
/// happened.
#[test]
fn a_run_whose_waiting_interpreter_a_test_killed_starts_cold() {
    let module = format!(
        "{FIND_WAITING}{}",
        r#"
import signal

def test_kills_what_waits_for_the_next_run():
    for pid in waiting_for_the_next_run():
        os.kill(pid, signal.SIGKILL)

def test_started_cold():
    assert open("/proc/self/cmdline", "rb").read().split(b"\0")[1] == b"-m"
"#
    );
    let tests = TestsDir::with(&[("test_kill.py", module.as_str())]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run(
        "mallory",
        19,
        &["test_kill.py::test_kills_what_waits_for_the_next_run"],
    );
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(id));
    let next = app.create_run("mallory", 19, &["test_kill.py::test_started_cold"]);
    let run = app.wait_finished(next, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(next));
}
