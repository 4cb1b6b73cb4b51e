//! Spawns the real service binary against a database of its own and talks
//! to it over HTTP, the way scripts and the SPA do.

use diesel::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// The Postgres server tests use: `DATABASE_URL`, else the project-local
/// throwaway cluster, started on demand.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if !url.trim().is_empty() {
                return url;
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/pg.sh start runs");
        assert!(out.status.success(), "scripts/pg.sh start failed");
        String::from_utf8(out.stdout)
            .expect("a URL")
            .trim()
            .to_string()
    })
}

/// Replaces the database name in a postgres URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A database of one test's own, dropped with it.
pub struct TestDb {
    admin_url: String,
    name: String,
    pub url: String,
}

impl TestDb {
    pub fn create() -> Arc<TestDb> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "te_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let admin_url = with_database(server_url(), "postgres");
        let mut conn = PgConnection::establish(&admin_url).expect("the test Postgres answers");
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .expect("a test database");
        let url = with_database(server_url(), &name);
        Arc::new(TestDb {
            admin_url,
            name,
            url,
        })
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("the test database answers")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn);
        }
    }
}

/// A tests root with the given files, in a temporary directory.
pub struct TestsDir {
    dir: tempfile::TempDir,
}

impl TestsDir {
    pub fn with(files: &[(&str, &str)]) -> TestsDir {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tests = TestsDir { dir };
        for (path, content) in files {
            tests.write(path, content);
        }
        tests
    }

    pub fn write(&self, path: &str, content: &str) {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a parent")).expect("directories");
        std::fs::write(full, content).expect("a test file");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A running service process.
pub struct TestApp {
    pub base: String,
    pub db: Arc<TestDb>,
    child: Child,
    pub log_path: PathBuf,
    _log_dir: tempfile::TempDir,
    /// API tokens of the users the suite acts as, made on first use.
    tokens: std::sync::Mutex<HashMap<String, String>>,
}

impl TestApp {
    /// A service on its own fresh database.
    pub fn spawn(tests: &TestsDir, env: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_on(TestDb::create(), tests, env)
    }

    /// A service on a given database, for several instances on one.
    pub fn spawn_on(db: Arc<TestDb>, tests: &TestsDir, env: &[(&str, &str)]) -> TestApp {
        let log_dir = tempfile::tempdir().expect("a log directory");
        let log_path = log_dir.path().join("service.log");
        let log_file = std::fs::File::create(&log_path).expect("a log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_test-executor"));
        command
            .env("DATABASE_URL", &db.url)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("TESTS_ROOT", tests.path())
            .env("SCHEDULER_TICK_MS", "200")
            .env("KILL_GRACE_MS", "1000")
            .env("RUST_LOG", "info")
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env_remove("INSTANCE_ID")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the service binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let base = match rx.recv_timeout(scaled(Duration::from_secs(60))) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("the service did not start:\n{log}");
            }
        };
        TestApp {
            base,
            db,
            child,
            log_path,
            _log_dir: log_dir,
            tokens: Default::default(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn service_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: plain syscall on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits for the process to exit on its own, `timeout` (scaled) at most.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + scaled(timeout);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        self.request("GET", path)
    }

    /// A GET without credentials, as a stranger would send it.
    pub fn get_anonymous(&self, path: &str) -> (u16, Value) {
        answer(ureq::get(&self.url(path)).call())
    }

    pub fn get_text(&self, path: &str) -> (u16, String, String) {
        match agent_request("GET", &self.url(path)).call() {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                let status = r.status();
                let content_type = r.header("content-type").unwrap_or("").to_string();
                (status, content_type, r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// A POST as the automation agent; a body that names its user
    /// (`username` of a run, `owner` of a reservation) is sent by that
    /// user, as a member with a token of its own, the way that person's
    /// script would send it.
    pub fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let named = body["username"]
            .as_str()
            .or_else(|| body["owner"].as_str())
            .filter(|name| is_account_name(name));
        match named {
            Some(name) => self.post_as(name, path, body),
            None => answer(agent_request("POST", &self.url(path)).send_json(body)),
        }
    }

    /// A POST with the token of `user` (a member, created on first use).
    pub fn post_as(&self, user: &str, path: &str, body: &Value) -> (u16, Value) {
        let token = self.token_of(user);
        answer(
            ureq::post(&self.url(path))
                .set("Authorization", &format!("Bearer {token}"))
                .send_json(body),
        )
    }

    /// Any request with the token of `user` (a member, created on first use).
    pub fn request_as(&self, user: &str, method: &str, path: &str) -> (u16, Value) {
        let token = self.token_of(user);
        answer(
            ureq::request(method, &self.url(path))
                .set("Authorization", &format!("Bearer {token}"))
                .call(),
        )
    }

    /// Logs in; the `Cookie` header that carries the session.
    pub fn login(&self, user: &str, password: &str) -> String {
        let response = ureq::post(&self.url("/api/auth/login"))
            .send_json(json!({"username": user, "password": password}));
        match response {
            Ok(response) => session_cookie(&response).expect("a session cookie"),
            Err(ureq::Error::Status(status, response)) => panic!(
                "{user} cannot log in: {status} {}",
                response.into_string().unwrap_or_default()
            ),
            Err(e) => panic!("login: {e}"),
        }
    }

    /// An API token of `user`, a member, created (with the user) on first
    /// use.
    pub fn token_of(&self, user: &str) -> String {
        // Held while the token is made: threads asking for one user at
        // once share one token rather than each making their own.
        let mut tokens = self.tokens.lock().unwrap();
        if let Some(token) = tokens.get(user) {
            return token.clone();
        }
        let token = self.new_user_token(user, "member");
        tokens.insert(user.to_string(), token.clone());
        token
    }

    /// Creates `user` with `role` (if it does not exist yet), logs in as it
    /// and makes it an API token of its own.
    pub fn new_user_token(&self, user: &str, role: &str) -> String {
        let password = format!("password-of-{user}");
        let (status, body) = answer(
            agent_request("POST", &self.url("/api/users"))
                .send_json(json!({"username": user, "role": role, "password": password})),
        );
        assert!(
            status == 201 || status == 409,
            "user {user} not created: {status} {body}"
        );
        let cookie = self.login(user, &password);
        let (status, created) = answer(
            ureq::post(&self.url("/api/tokens"))
                .set("Cookie", &cookie)
                .send_json(json!({"name": "suite"})),
        );
        assert_eq!(status, 201, "no token for {user}: {created}");
        created["token"].as_str().expect("a token").to_string()
    }

    pub fn post_raw(&self, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        answer(
            agent_request("POST", &self.url(path))
                .set("Content-Type", content_type)
                .send_string(body),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(agent_request("PUT", &self.url(path)).send_json(body))
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.request("DELETE", path)
    }

    pub fn request(&self, method: &str, path: &str) -> (u16, Value) {
        answer(agent_request(method, &self.url(path)).call())
    }

    /// Creates a run and returns its id.
    pub fn create_run(&self, username: &str, environment_id: i32, paths: &[&str]) -> i64 {
        let (status, run) = self.post(
            "/api/runs",
            &serde_json::json!({"username": username, "environment_id": environment_id, "paths": paths}),
        );
        assert_eq!(status, 201, "run not created: {run}");
        run["id"].as_i64().expect("a run id")
    }

    pub fn run(&self, id: i64) -> Value {
        let (status, run) = self.get(&format!("/api/runs/{id}"));
        assert_eq!(status, 200, "{run}");
        run
    }

    /// Polls a run until it is finished; see `wait_run` for `patience`.
    pub fn wait_finished(&self, id: i64, patience: Duration) -> Value {
        self.wait_run(id, patience, |run| {
            !matches!(run["status"].as_str(), Some("queued") | Some("running"))
        })
    }

    /// Polls a run until `done` holds. `patience` is how long the run may
    /// show no progress at all on a quiet machine (scaled, see `scaled`):
    /// the deadline moves whenever the run's status, counts or log move, and,
    /// while it is queued, whenever any running run moves or ends. A loaded
    /// machine only makes the wait longer; a stuck service still fails it, as
    /// does one that moves on and on without getting there (`PATIENCE_CAP`).
    pub fn wait_run(
        &self,
        id: i64,
        patience: Duration,
        mut done: impl FnMut(&Value) -> bool,
    ) -> Value {
        let patience = scaled(patience);
        let started = Instant::now();
        let mut progress = Progress::default();
        let mut moved_at = started;
        let mut looked_at: Option<Instant> = None;
        loop {
            let run = self.run(id);
            if done(&run) {
                return run;
            }
            let now = Instant::now();
            if looked_at.is_none_or(|at| now.duration_since(at) >= PROGRESS_EVERY) {
                looked_at = Some(now);
                if progress.moved(self, &run) {
                    moved_at = now;
                }
            }
            let (still, waited) = (now.duration_since(moved_at), now.duration_since(started));
            if still > patience || waited > patience * PATIENCE_CAP {
                panic!(
                    "run {id} did not get there: no progress for {still:.1?} \
                     (patience {patience:.1?}), {waited:.1?} in all: {run}\nservice log:\n{}",
                    self.service_log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self, id: i64) -> String {
        let (status, _, text) = self.get_text(&format!("/api/runs/{id}/log.txt"));
        assert_eq!(status, 200);
        text
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a wait saw of its run and of the runs ahead of it at its last look,
/// to tell a slow machine (something moves) from a stuck service (nothing
/// does).
#[derive(Default)]
struct Progress {
    seen: Option<String>,
    log_ends: HashMap<i64, i64>,
}

impl Progress {
    /// Looks again; whether anything visible changed since the last look.
    fn moved(&mut self, app: &TestApp, run: &Value) -> bool {
        let mut now = vec![json!([
            run["status"],
            run["summary"],
            run["queue_position"]
        ])];
        match run["status"].as_str() {
            Some("running") => {
                if let Some(id) = run["id"].as_i64() {
                    now.push(json!(self.log_end(app, id)));
                }
            }
            // Its turn comes as the runs ahead move: those of its own
            // environment, and under the parallel cap any other.
            Some("queued") => {
                let (_, running) = app.get("/api/runs?status=running&per_page=500");
                for ahead in running["items"].as_array().into_iter().flatten() {
                    let log_end = ahead["id"].as_i64().map(|id| self.log_end(app, id));
                    now.push(json!([ahead["id"], ahead["summary"], log_end]));
                }
            }
            _ => {}
        }
        let now = Value::Array(now).to_string();
        let moved = self.seen.as_ref() != Some(&now);
        self.seen = Some(now);
        moved
    }

    /// Where a run's log ends now, read on from where it ended before.
    fn log_end(&mut self, app: &TestApp, id: i64) -> i64 {
        let from = self.log_ends.get(&id).copied().unwrap_or(0);
        let (status, chunk) = app.get(&format!("/api/runs/{id}/log?offset={from}"));
        let end = match chunk["next_offset"].as_i64() {
            Some(end) if status == 200 => end,
            _ => from,
        };
        self.log_ends.insert(id, end);
        end
    }
}

/// The secret of the admin token the suite's requests carry and each
/// service is started with (`ADMIN_TOKEN`), for when the API asks for one.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

/// The `Cookie` header value for the session a login answer set.
pub fn session_cookie(response: &ureq::Response) -> Option<String> {
    response
        .all("set-cookie")
        .into_iter()
        .filter_map(|cookie| cookie.split(';').next())
        .find(|pair| pair.starts_with("te_session=") && pair.len() > "te_session=".len())
        .map(str::to_string)
}

/// Whether the service would take `name` for an account.
fn is_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// A request as the suite's automation agent: with the admin token.
pub fn agent_request(method: &str, url: &str) -> ureq::Request {
    ureq::request(method, url).set("Authorization", &format!("Bearer {ADMIN_TOKEN}"))
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => {
            let status = response.status();
            let text = response.into_string().unwrap_or_default();
            let body = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            (status, body)
        }
        Err(e) => panic!("request failed: {e}"),
    }
}

/// Asserts the JSON error body of docs/API.md with the given code.
pub fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "unexpected answer: {}", answer.1);
    assert_eq!(
        answer.1["error"]["code"], code,
        "unexpected body: {}",
        answer.1
    );
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error message: {}",
        answer.1
    );
}

/// Strips ANSI colour codes.
pub fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The patience of most waits on a quiet machine.
pub const SECS_30: Duration = Duration::from_secs(30);

/// However much it sees move, a wait on a run gives up after this many
/// times its patience: a run that moves forever without getting there is
/// stuck too.
const PATIENCE_CAP: u32 = 10;

/// How often a wait on a run looks at its progress (a few requests each).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// How much slower than a quiet machine this one may be: `TEST_TIME_SCALE`
/// (a positive number, default 1), read once.
pub fn time_scale() -> f64 {
    static SCALE: OnceLock<f64> = OnceLock::new();
    *SCALE.get_or_init(|| {
        let raw = std::env::var("TEST_TIME_SCALE").unwrap_or_default();
        if raw.trim().is_empty() {
            return 1.0;
        }
        match raw.trim().parse::<f64>() {
            Ok(scale) if scale.is_finite() && scale > 0.0 => scale,
            _ => panic!("TEST_TIME_SCALE must be a positive number, not {raw:?}"),
        }
    })
}

/// A wait sized for a quiet machine, stretched by `TEST_TIME_SCALE`. Every
/// timeout of the suite goes through here; bounds that a test asserts do
/// not, they are the behaviour under test.
pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(time_scale())
}

/// A TCP proxy in front of the test Postgres, to cut the service off from
/// its database and bring it back, as an outage would.
pub struct DbProxy {
    pub port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    /// Milliseconds every answer of the database is held back: a slow one.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl DbProxy {
    pub fn start() -> DbProxy {
        use std::net::{TcpListener, TcpStream};
        let target = server_address();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a proxy port");
        let port = listener.local_addr().expect("an address").port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let open: Arc<std::sync::Mutex<Vec<TcpStream>>> = Arc::default();
        let delay_ms: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (accept_up, accept_open, accept_delay) =
            (Arc::clone(&up), Arc::clone(&open), Arc::clone(&delay_ms));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                let pipes = [
                    (client.try_clone(), server.try_clone(), None),
                    (
                        server.try_clone(),
                        client.try_clone(),
                        Some(Arc::clone(&accept_delay)),
                    ),
                ];
                if let Ok(mut open) = accept_open.lock() {
                    open.extend([client, server]);
                }
                for (from, to, delay) in pipes {
                    if let (Ok(mut from), Ok(mut to)) = (from, to) {
                        std::thread::spawn(move || {
                            let mut buffer = vec![0u8; 64 * 1024];
                            loop {
                                let n = match std::io::Read::read(&mut from, &mut buffer) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => n,
                                };
                                let ms = delay.as_ref().map_or(0, |d| d.load(Ordering::SeqCst));
                                if ms > 0 {
                                    std::thread::sleep(Duration::from_millis(ms));
                                }
                                if std::io::Write::write_all(&mut to, &buffer[..n]).is_err() {
                                    break;
                                }
                            }
                            let _ = to.shutdown(std::net::Shutdown::Both);
                        });
                    }
                }
            }
        });
        DbProxy {
            port,
            up,
            open,
            delay_ms,
        }
    }

    /// Holds every answer of the database back this long from now on.
    pub fn slow_down(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The URL of a database through this proxy.
    pub fn url_for(&self, db: &TestDb) -> String {
        let (scheme, rest) = db.url.split_once("://").unwrap_or(("postgres", &db.url));
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let user = authority
            .rsplit_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}127.0.0.1:{}{path}", self.port)
    }

    /// Drops every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Ok(mut open) = self.open.lock() {
            for stream in open.drain(..) {
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// host:port of the test Postgres.
fn server_address() -> String {
    let url = server_url();
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let host_part = after_scheme
        .split(['/', '?'])
        .next()
        .unwrap_or(after_scheme);
    let host_port = host_part.rsplit_once('@').map_or(host_part, |(_, hp)| hp);
    if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    }
}

/// Whether a process is alive (a zombie counts as gone).
pub fn process_alive(pid: i32) -> bool {
    backend::sys::procfs::stat(pid).is_some_and(|process| process.is_live())
}

/// Waits until `check` holds, `timeout` (scaled) at most, or panics with
/// `what`.
pub fn eventually(timeout: Duration, what: &str, check: impl Fn() -> bool) {
    let timeout = scaled(timeout);
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:.1?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
