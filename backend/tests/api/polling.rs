//! Cheap polling: ETags on the polled GET endpoints, 304 for a client that
//! already has the current answer, a new tag once anything it shows changed.

use diesel::prelude::*;
use std::sync::Arc;

use crate::helpers::*;

const PASSING: &str = "def test_one():\n    print('one')\n";
/// One quick test, then a slow one: the log grows while it runs.
const SLOW: &str =
    "import time\n\ndef test_quick():\n    pass\n\ndef test_slow():\n    time.sleep(2)\n";

/// A GET with an optional `If-None-Match`: status, ETag, body.
fn conditional_get(app: &TestApp, path: &str, etag: Option<&str>) -> (u16, String, String) {
    let mut request = agent_request("GET", &app.url(path));
    if let Some(etag) = etag {
        request = request.set("If-None-Match", etag);
    }
    match request.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => {
            let status = r.status();
            let etag = r.header("ETag").unwrap_or_default().to_string();
            (status, etag, r.into_string().unwrap_or_default())
        }
        Err(e) => panic!("GET {path}: {e}"),
    }
}

fn current_etag(app: &TestApp, path: &str) -> String {
    let (status, etag, body) = conditional_get(app, path, None);
    assert_eq!(status, 200, "{path}: {body}");
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "{path}: ETag {etag:?}"
    );
    etag
}

#[test]
fn a_second_identical_get_with_the_etag_answers_304_with_an_empty_body() {
    let tests = TestsDir::with(&[("test_one.py", PASSING)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("ida", 3, &["test_one.py"]);
    app.wait_finished(id, SECS_30);
    for path in [
        "/api/runs".to_string(),
        "/api/runs?status=success&per_page=5".to_string(),
        format!("/api/runs/{id}"),
        format!("/api/runs/{id}/log?offset=0"),
        format!("/api/runs/{id}/log.txt"),
        format!("/api/runs/{id}/cases"),
        format!("/api/runs/{id}/junit.xml"),
        "/api/environments".to_string(),
        "/api/environments/3".to_string(),
    ] {
        let etag = current_etag(&app, &path);
        let (status, again, body) = conditional_get(&app, &path, Some(&etag));
        assert_eq!(status, 304, "{path}");
        assert_eq!(body, "", "{path}: a 304 has no body");
        assert_eq!(again, etag, "{path}: the 304 names the tag");
        // As a proxy that compresses sends it back, and within a list.
        let weak = format!("\"other\", W/{etag}");
        assert_eq!(conditional_get(&app, &path, Some(&weak)).0, 304, "{path}");
        // Another URL's tag is not this one's.
        assert_eq!(
            conditional_get(&app, "/api/runs?page=2", Some(&etag)).0,
            200,
            "{path}"
        );
    }
    // Any offset, however far past the end (schemathesis found that one
    // overflowing a sum gave a 500).
    let (status, far) = app.get(&format!("/api/runs/{id}/log?offset={}", i64::MAX));
    assert_eq!(status, 200, "{far}");
    assert_eq!(far["content"], "");
    assert_eq!(far["complete"], true);
    // An unknown run is still a 404, whatever the client sends.
    let etag = current_etag(&app, &format!("/api/runs/{id}"));
    let (status, _, body) = conditional_get(&app, "/api/runs/999", Some(&etag));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn a_new_run_and_a_new_log_line_change_the_etag() {
    let tests = TestsDir::with(&[("test_one.py", PASSING), ("test_slow.py", SLOW)]);
    let app = TestApp::spawn(&tests, &[]);
    let list = current_etag(&app, "/api/runs");
    let environments = current_etag(&app, "/api/environments");
    let environment = current_etag(&app, "/api/environments/4");
    let other_environment = current_etag(&app, "/api/environments/5");

    let id = app.create_run("jo", 4, &["test_slow.py"]);
    let (status, new_list, body) = conditional_get(&app, "/api/runs", Some(&list));
    assert_eq!(status, 200, "a new run is news");
    assert_ne!(new_list, list);
    assert!(body.contains(&format!("\"id\":{id}")), "{body}");
    assert_eq!(
        conditional_get(&app, "/api/environments", Some(&environments)).0,
        200
    );
    assert_eq!(
        conditional_get(&app, "/api/environments/4", Some(&environment)).0,
        200
    );
    // The version is global: any change renews every tag.
    assert_eq!(
        conditional_get(&app, "/api/environments/5", Some(&other_environment)).0,
        200
    );

    // The log while the test prints its first line and sleeps...
    let log = format!("/api/runs/{id}/log?offset=0");
    let seen = std::cell::RefCell::new(None);
    eventually(SECS_30, "the first test is in the log", || {
        let (_, tag, body) = conditional_get(&app, &log, None);
        let printed = body.contains("test_quick") && body.contains("\"complete\":false");
        if printed {
            seen.borrow_mut().get_or_insert((tag, body));
        }
        printed
    });
    let (running_tag, running_body) = seen.into_inner().expect("seen");
    let run_tag = current_etag(&app, &format!("/api/runs/{id}"));
    // ...and once it has finished and written its last lines.
    app.wait_finished(id, SECS_30);
    let (status, finished_tag, finished_body) = conditional_get(&app, &log, Some(&running_tag));
    assert_eq!(status, 200, "new log lines are news");
    assert_ne!(finished_tag, running_tag);
    assert!(finished_body.len() > running_body.len());
    assert!(
        finished_body.contains("\"complete\":true"),
        "{finished_body}"
    );
    let (status, _, run) = conditional_get(&app, &format!("/api/runs/{id}"), Some(&run_tag));
    assert_eq!(status, 200);
    assert!(run.contains("\"status\":\"success\""), "{run}");

    // Idle again: the tags stay put.
    let settled = current_etag(&app, "/api/runs");
    std::thread::sleep(scaled(std::time::Duration::from_millis(600)));
    assert_eq!(
        conditional_get(&app, "/api/runs", Some(&settled)).0,
        304,
        "nothing changed"
    );
    // An environment's settings are part of what it shows.
    let before = current_etag(&app, "/api/environments/5");
    let (status, _) = app.put(
        "/api/environments/5",
        &serde_json::json!({"description": "renamed"}),
    );
    assert_eq!(status, 200);
    assert_eq!(
        conditional_get(&app, "/api/environments/5", Some(&before)).0,
        200
    );
}

#[test]
fn tags_follow_every_change_through_an_outage_of_the_database() {
    let tests = TestsDir::with(&[("test_one.py", PASSING)]);
    let proxy = DbProxy::start();
    let db = TestDb::create();
    let url = proxy.url_for(&db);
    let app = TestApp::spawn_on(Arc::clone(&db), &tests, &[("DATABASE_URL", &url)]);
    let path = "/api/environments/6";
    let conn = std::cell::RefCell::new(db.conn());
    let reader_connected = |conn: &mut PgConnection| {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind::<diesel::sql_types::Text, _>(backend::http::versions::APPLICATION_NAME)
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .unwrap_or(0)
            == 1
    };
    let tag = current_etag(&app, path);
    eventually(
        SECS_30,
        "versions are read on a connection of their own",
        || reader_connected(&mut conn.borrow_mut()),
    );
    assert_eq!(conditional_get(&app, path, Some(&tag)).0, 304);

    // Every connection is cut, and none can be made meanwhile.
    proxy.down();
    let (status, _, body) = conditional_get(&app, path, Some(&tag));
    assert_eq!(status, 503, "{body}");
    proxy.up();
    eventually(SECS_30, "polls are answered again", || {
        conditional_get(&app, path, Some(&tag)).0 == 304
    });
    // Whichever connection reads the version (a pooled one until its own
    // is back), the poll right after a change sees it.
    for round in 0..8 {
        let tag = current_etag(&app, path);
        let (status, _) = app.put(
            path,
            &serde_json::json!({"description": format!("round {round}")}),
        );
        assert_eq!(status, 200);
        let (status, new_tag, body) = conditional_get(&app, path, Some(&tag));
        assert_eq!(status, 200, "round {round}: the change is news");
        assert_ne!(new_tag, tag);
        assert!(body.contains(&format!("round {round}")), "{body}");
        std::thread::sleep(scaled(std::time::Duration::from_millis(250)));
    }
    eventually(SECS_30, "its own connection is back", || {
        reader_connected(&mut conn.borrow_mut())
    });
}
