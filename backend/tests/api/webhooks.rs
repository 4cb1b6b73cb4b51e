//! Webhooks: deliveries reach a real local receiver that is down, slow,
//! answers an error, then is up; once each, signed, across restarts and
//! instances.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::*;

/// How the receiver treats one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Reads the request, then says nothing for this long and hangs up.
    Silent(Duration),
    Status(u16),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Hit {
    headers: HashMap<String, String>,
    body: Vec<u8>,
    answer: Answer,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn answered_ok(&self) -> bool {
        matches!(self.answer, Answer::Status(s) if (200..300).contains(&s))
    }
}

/// An HTTP receiver on a port of its own, answering each request by its
/// script (then 200), in a thread per connection so that a silent answer
/// holds up nobody.
struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// A free port nobody listens on: the receiver, down.
    fn reserve_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn start(port: u16, script: Vec<Answer>) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the receiver's port");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let seen = Arc::clone(&hits);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (seen, script) = (Arc::clone(&seen), Arc::clone(&script));
                std::thread::spawn(move || {
                    let Some((headers, body)) = read_request(&stream) else {
                        return;
                    };
                    let answer = script.lock().unwrap().next().unwrap_or(Answer::Status(200));
                    seen.lock().unwrap().push(Hit {
                        headers,
                        body,
                        answer,
                    });
                    respond(stream, answer);
                });
            }
        });
        Receiver { hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<(HashMap<String, String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    assert!(request_line.starts_with("POST /hook "), "{request_line}");
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

fn respond(mut stream: TcpStream, answer: Answer) {
    match answer {
        Answer::Silent(for_how_long) => std::thread::sleep(for_how_long),
        Answer::Status(status) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    }
}

fn expected_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

const FAILING: (&str, &str) = ("test_fails.py", "def test_fails():\n    assert 1 == 2\n");
const PASSING: (&str, &str) = ("test_ok.py", "def test_ok():\n    pass\n");

/// Retries a few hundred milliseconds apart, attempts cut after a second.
const QUICK_RETRIES: [(&str, &str); 2] = [
    ("WEBHOOK_RETRY_BASE_MS", "200"),
    ("WEBHOOK_TIMEOUT_MS", "1000"),
];

fn add_webhook(app: &TestApp, port: u16, events: &[&str], extra: Value) -> i64 {
    let mut body = json!({"url": format!("http://127.0.0.1:{port}/hook"), "events": events});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, webhook) = app.post("/api/webhooks", &body);
    assert_eq!(status, 201, "{webhook}");
    webhook["id"].as_i64().unwrap()
}

fn deliveries(app: &TestApp, webhook: i64) -> Vec<Value> {
    let (status, log) = app.get(&format!("/api/webhooks/{webhook}/deliveries"));
    assert_eq!(status, 200, "{log}");
    log.as_array().unwrap().clone()
}

#[test]
fn a_failed_run_reaches_a_receiver_that_was_down_slow_and_wrong_once_and_signed() {
    let tests = TestsDir::with(&[FAILING]);
    let app = TestApp::spawn(&tests, &QUICK_RETRIES);
    let port = Receiver::reserve_port();
    let webhook = add_webhook(&app, port, &["run.failed"], json!({"secret": "s3cret"}));
    let (_, listed) = app.get("/api/webhooks");
    assert_eq!(listed[0]["signed"], true, "{listed}");
    assert!(
        !listed.to_string().contains("s3cret"),
        "the secret is never shown"
    );

    let run = app.create_run("alice", 3, &["test_fails.py"]);
    assert_eq!(app.wait_finished(run, SECS_30)["status"], "failed");

    // Down: the attempt fails and is kept for later.
    eventually(
        SECS_30,
        "a failed attempt on a receiver that is down",
        || {
            let log = deliveries(&app, webhook);
            log.len() == 1
                && log[0]["attempts"].as_i64() >= Some(1)
                && log[0]["last_error"].is_string()
        },
    );
    let log = deliveries(&app, webhook);
    assert_eq!(log[0]["state"], "pending", "{log:?}");
    assert_eq!(log[0]["event"], "run.failed");
    assert_eq!(log[0]["subject_id"], run);
    assert!(log[0]["next_attempt_at"].is_string(), "{log:?}");

    // Then slow (past the time-out), then a 500, then up.
    let receiver = Receiver::start(
        port,
        vec![Answer::Silent(Duration::from_secs(3)), Answer::Status(500)],
    );
    eventually(SECS_30, "the delivery to go through", || {
        deliveries(&app, webhook)[0]["state"] == "delivered"
    });
    let log = deliveries(&app, webhook);
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["last_status"], 200, "{log:?}");
    assert!(log[0]["attempts"].as_i64().unwrap() >= 4, "{log:?}");
    assert!(log[0]["delivered_at"].is_string());
    assert!(log[0]["next_attempt_at"].is_null());

    // Nothing more arrives: delivered exactly once.
    std::thread::sleep(Duration::from_secs(2));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3, "silent, 500, 200: {hits:?}");
    assert!(matches!(hits[0].answer, Answer::Silent(_)));
    assert!(matches!(hits[1].answer, Answer::Status(500)));
    let delivered: Vec<&Hit> = hits.iter().filter(|h| h.answered_ok()).collect();
    assert_eq!(delivered.len(), 1);
    let hit = delivered[0];
    assert_eq!(
        hit.headers.get("x-executor-signature"),
        Some(&expected_signature("s3cret", &hit.body)),
        "the signature is the HMAC-SHA256 of the exact body"
    );
    // Every attempt sent the same bytes.
    assert!(hits.iter().all(|h| h.body == hit.body));
    assert_eq!(
        hit.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let body = hit.json();
    assert_eq!(body["event"], "run.failed");
    assert!(body["at"]
        .as_str()
        .is_some_and(|at| at.parse::<chrono::DateTime<chrono::Utc>>().is_ok()));
    assert_eq!(body["run"]["id"], run);
    assert_eq!(body["run"]["status"], "failed");
    assert_eq!(body["run"]["username"], "alice");
}

#[test]
fn a_delivery_waiting_for_its_receiver_survives_a_restart_of_the_service() {
    let tests = TestsDir::with(&[PASSING]);
    let db = TestDb::create();
    let port = Receiver::reserve_port();
    let (webhook, run) = {
        let app = TestApp::spawn_on(Arc::clone(&db), &tests, &QUICK_RETRIES);
        let webhook = add_webhook(&app, port, &["run.finished", "environment.free"], json!({}));
        let run = app.create_run("bob", 5, &["test_ok.py"]);
        assert_eq!(app.wait_finished(run, SECS_30)["status"], "success");
        eventually(
            SECS_30,
            "both events tried once while the receiver is down",
            || {
                let log = deliveries(&app, webhook);
                log.len() == 2 && log.iter().all(|d| d["attempts"].as_i64() >= Some(1))
            },
        );
        (webhook, run)
        // The service stops here, its deliveries pending.
    };
    let receiver = Receiver::start(port, vec![]);
    let app = TestApp::spawn_on(Arc::clone(&db), &tests, &QUICK_RETRIES);
    eventually(
        SECS_30,
        "both deliveries to go through after the restart",
        || {
            deliveries(&app, webhook)
                .iter()
                .all(|d| d["state"] == "delivered")
        },
    );
    std::thread::sleep(Duration::from_secs(1));
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let mut events: Vec<Value> = hits.iter().map(|h| h.json()).collect();
    events.sort_by_key(|e| e["event"].as_str().unwrap().to_string());
    assert_eq!(events[0]["event"], "environment.free");
    assert_eq!(events[0]["environment"]["id"], 5);
    assert_eq!(events[1]["event"], "run.finished");
    assert_eq!(events[1]["run"]["id"], run);
    assert!(
        hits.iter()
            .all(|h| !h.headers.contains_key("x-executor-signature")),
        "no secret, no signature"
    );
}

#[test]
fn two_instances_deliver_each_event_once() {
    let tests = TestsDir::with(&[PASSING]);
    let db = TestDb::create();
    let first = TestApp::spawn_on(Arc::clone(&db), &tests, &QUICK_RETRIES);
    let second = TestApp::spawn_on(Arc::clone(&db), &tests, &QUICK_RETRIES);
    let port = Receiver::reserve_port();
    let receiver = Receiver::start(port, vec![]);
    let webhook = add_webhook(&first, port, &["run.finished"], json!({"format": "slack"}));
    let runs: Vec<i64> = (0..6)
        .map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            app.create_run("carol", 10 + i, &["test_ok.py"])
        })
        .collect();
    for run in &runs {
        first.wait_finished(*run, SECS_30);
    }
    eventually(SECS_30, "every run's event delivered", || {
        let log = deliveries(&second, webhook);
        log.len() == runs.len() && log.iter().all(|d| d["state"] == "delivered")
    });
    std::thread::sleep(Duration::from_secs(1));
    let hits = receiver.hits();
    let mut delivered: Vec<i64> = hits
        .iter()
        .map(|h| h.json()["run"]["id"].as_i64().unwrap())
        .collect();
    delivered.sort_unstable();
    assert_eq!(delivered, runs, "each event once: {hits:?}");
    for hit in &hits {
        let body = hit.json();
        let text = body["text"].as_str().expect("a Slack text");
        assert!(text.contains("success"), "{text}");
    }
    assert!(deliveries(&first, webhook)
        .iter()
        .all(|d| d["attempts"] == 1));
}

#[test]
fn bad_webhooks_are_refused_naming_the_field() {
    let tests = TestsDir::with(&[PASSING]);
    let app = TestApp::spawn(&tests, &[]);
    let bad = [
        (
            json!({"url": "ftp://example.com/x", "events": ["run.failed"]}),
            "url",
        ),
        (
            json!({"url": "example.com", "events": ["run.failed"]}),
            "url",
        ),
        (json!({"events": ["run.failed"]}), "url"),
        (
            json!({"url": "https://example.com", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com", "events": ["run.started"]}),
            "events",
        ),
        (json!({"url": "https://example.com"}), "events"),
        (
            json!({"url": "https://example.com", "events": ["run.failed"], "secret": ""}),
            "secret",
        ),
        (
            json!({"url": "https://example.com", "events": ["run.failed"], "format": "xml"}),
            "format",
        ),
    ];
    for (body, field) in bad {
        let answer = app.post("/api/webhooks", &body);
        assert_error(&answer, 422, "validation");
        assert!(
            answer.1["error"]["fields"][field].is_string(),
            "{body}: {}",
            answer.1
        );
    }
    assert_error(
        &app.post_raw("/api/webhooks", "application/json", "{"),
        400,
        "bad_request",
    );
    let (_, listed) = app.get("/api/webhooks");
    assert_eq!(listed, json!([]), "nothing was added");

    let (status, webhook) = app.post(
        "/api/webhooks",
        &json!({"url": "https://example.com/hook", "events": ["environment.free", "reservation.expiring"]}),
    );
    assert_eq!(status, 201, "{webhook}");
    assert_eq!(webhook["format"], "json");
    assert_eq!(webhook["signed"], false);
    let id = webhook["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/webhooks/{id}/deliveries")),
        (200, json!([]))
    );
    assert_eq!(app.delete(&format!("/api/webhooks/{id}")).0, 204);
    assert_error(
        &app.delete(&format!("/api/webhooks/{id}")),
        404,
        "not_found",
    );
    assert_error(
        &app.get(&format!("/api/webhooks/{id}/deliveries")),
        404,
        "not_found",
    );
}

#[test]
fn a_delivery_retried_past_its_time_is_given_up_and_says_so() {
    let tests = TestsDir::with(&[PASSING]);
    let mut env = QUICK_RETRIES.to_vec();
    env.push(("WEBHOOK_GIVE_UP_SECS", "2"));
    let app = TestApp::spawn(&tests, &env);
    let port = Receiver::reserve_port();
    let webhook = add_webhook(&app, port, &["run.finished"], json!({}));
    let run = app.create_run("dora", 6, &["test_ok.py"]);
    app.wait_finished(run, SECS_30);
    eventually(SECS_30, "the delivery to be given up", || {
        deliveries(&app, webhook)[0]["state"] == "failed"
    });
    let log = deliveries(&app, webhook);
    assert!(
        log[0]["attempts"].as_i64().unwrap() >= 2,
        "retried first: {log:?}"
    );
    assert!(log[0]["failed_at"].is_string());
    assert!(log[0]["next_attempt_at"].is_null());
    assert!(log[0]["last_error"].is_string());
    let (_, listed) = app.get("/api/webhooks");
    assert_eq!(listed[0]["failed"], 1, "{listed}");
    assert_eq!(listed[0]["pending"], 0);
    // Given up means no more attempts, even once the receiver is up.
    let receiver = Receiver::start(port, vec![]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(receiver.hits().is_empty());
}

#[test]
fn the_sender_sleeps_while_nothing_waits_to_be_delivered() {
    use diesel::RunQueryDsl;
    let db = TestDb::create();
    let mut conn = db.conn();
    backend::db::run_migrations(&mut conn).unwrap();
    let due_in =
        |conn: &mut diesel::PgConnection| backend::db::webhooks::next_due_in(conn).unwrap();
    assert_eq!(due_in(&mut conn), None, "an empty outbox is never due");
    diesel::sql_query(
        "INSERT INTO webhooks (id, url, events) VALUES (1, 'http://127.0.0.1:9/', '{run.finished}')",
    )
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (webhook_id, event, subject_id, next_attempt_at) \
         VALUES (1, 'run.finished', 1, now() + interval '30 seconds')",
    )
    .execute(&mut conn)
    .unwrap();
    let later = due_in(&mut conn).expect("a waiting delivery is due some time");
    assert!((25.0..=30.0).contains(&later), "due in about 30 s: {later}");
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (webhook_id, event, subject_id, next_attempt_at) \
         VALUES (1, 'run.finished', 2, now() - interval '5 seconds')",
    )
    .execute(&mut conn)
    .unwrap();
    assert_eq!(due_in(&mut conn), Some(0.0), "one overdue is due now");
    diesel::sql_query("UPDATE webhook_deliveries SET delivered_at = now()")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(due_in(&mut conn), None, "delivered ones wait for nothing");
}
