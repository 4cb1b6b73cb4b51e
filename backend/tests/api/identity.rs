//! Identity: who may do what (a role for every endpoint class), API
//! tokens that expire and are revoked, sessions that end at logout, the
//! CSRF rules a session cookie lives under, runs that belong to their
//! caller, protected environments, the audit log, first start, single
//! sign-on behind a proxy, and `AUTH=off`.

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::*;

const QUICK: &str = "def test_quick():\n    pass\n";

fn tests() -> TestsDir {
    TestsDir::with(&[("test_quick.py", QUICK)])
}

/// A request with the given credentials (none: a stranger).
fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = ureq::request(method, &app.url(path));
    if let Some(auth) = auth {
        request = if auth.starts_with("te_session=") {
            request.set("Cookie", auth)
        } else {
            request.set("Authorization", &format!("Bearer {auth}"))
        };
    }
    answer(match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    })
}

fn audit(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/audit?{query}"));
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn every_role_gets_what_its_endpoint_class_allows() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let viewer = app.new_user_token("vera", "viewer");
    let member = app.new_user_token("mia", "member");
    let admin = ADMIN_TOKEN.to_string();
    let run = json!({"environment_id": 3, "paths": ["test_quick.py"]});
    let reservation = json!({"minutes": 5, "when": "next"});
    let environment = json!({"description": "changed"});
    let new_user =
        |name: &str| json!({"username": name, "role": "viewer", "password": "long enough"});

    // (class, method, path, body, stranger, viewer, member, admin)
    type Row<'a> = (&'a str, &'a str, String, Option<Value>, [u16; 4]);
    let table: Vec<Row> = vec![
        (
            "health",
            "GET",
            "/api/health".into(),
            None,
            [200, 200, 200, 200],
        ),
        (
            "openapi",
            "GET",
            "/api/openapi.json".into(),
            None,
            [200, 200, 200, 200],
        ),
        (
            "read",
            "GET",
            "/api/runs".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "read",
            "GET",
            "/api/environments/3".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "read",
            "GET",
            "/api/tests".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "metrics",
            "GET",
            "/metrics".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "self",
            "GET",
            "/api/auth/me".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "self",
            "GET",
            "/api/tokens".into(),
            None,
            [401, 200, 200, 200],
        ),
        (
            "run",
            "POST",
            "/api/runs".into(),
            Some(run.clone()),
            [401, 403, 201, 201],
        ),
        (
            "reserve",
            "POST",
            "/api/environments/4/reservations".into(),
            Some(reservation.clone()),
            [401, 403, 201, 201],
        ),
        (
            "environments",
            "PUT",
            "/api/environments/5".into(),
            Some(environment.clone()),
            [401, 403, 403, 200],
        ),
        (
            "environments",
            "POST",
            "/api/environments/5/maintenance".into(),
            Some(json!({"reason": "r"})),
            [401, 403, 403, 200],
        ),
        (
            "tests",
            "DELETE",
            "/api/tests/nothing/test_none.py".into(),
            None,
            [401, 403, 403, 404],
        ),
        (
            "users",
            "GET",
            "/api/users".into(),
            None,
            [401, 403, 403, 200],
        ),
        (
            "users",
            "POST",
            "/api/users".into(),
            Some(new_user("uma")),
            [401, 403, 403, 201],
        ),
        (
            "audit",
            "GET",
            "/api/audit".into(),
            None,
            [401, 403, 403, 200],
        ),
    ];
    let callers = [
        None,
        Some(viewer.as_str()),
        Some(member.as_str()),
        Some(admin.as_str()),
    ];
    let names = ["stranger", "viewer", "member", "admin"];
    for (class, method, path, body, expected) in &table {
        for (i, caller) in callers.iter().enumerate() {
            let (status, answer) = call(&app, method, path, *caller, body.as_ref());
            assert_eq!(
                status, expected[i],
                "{class}: {method} {path} as {}: {answer}",
                names[i]
            );
            match status {
                401 => assert_eq!(answer["error"]["code"], "unauthorized", "{answer}"),
                403 => assert_eq!(answer["error"]["code"], "forbidden", "{answer}"),
                _ => {}
            }
            // Undo what succeeded, so that the next caller meets the same.
            if *method == "POST" && status == 201 && path == "/api/users" {
                app.delete("/api/users/uma");
            }
            if path.ends_with("/maintenance") && status == 200 {
                app.delete(path);
            }
        }
    }
}

#[test]
fn a_token_that_expired_or_was_revoked_is_refused() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let cookie = {
        app.new_user_token("tom", "member");
        app.login("tom", "password-of-tom")
    };
    let (status, created) = call(
        &app,
        "POST",
        "/api/tokens",
        Some(&cookie),
        Some(&json!({"name": "ci", "expires_in_days": 30})),
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(created["expires_at"].is_string(), "{created}");
    assert_eq!(
        call(&app, "GET", "/api/auth/me", Some(&secret), None).1["username"],
        "tom"
    );

    // The list shows it, never its secret.
    let (_, listed) = call(&app, "GET", "/api/tokens", Some(&cookie), None);
    assert!(
        listed.as_array().unwrap().iter().any(|t| t["name"] == "ci"),
        "{listed}"
    );
    assert!(!listed.to_string().contains(&secret), "{listed}");
    // Stored hashed.
    let mut conn = app.db.conn();
    let stored: Vec<String> = diesel::sql_query("SELECT secret_hash AS note FROM api_tokens")
        .load::<Note>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|n| n.note)
        .collect();
    assert!(
        stored.iter().all(|hash| !hash.contains(&secret)),
        "{stored:?}"
    );

    // Past its expiry, refused.
    diesel::sql_query(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'ci'",
    )
    .execute(&mut conn)
    .unwrap();
    let refused = call(&app, "GET", "/api/runs", Some(&secret), None);
    assert_error(&refused, 401, "unauthorized");

    // Revoked: refused at once.
    let (_, other) = call(
        &app,
        "POST",
        "/api/tokens",
        Some(&cookie),
        Some(&json!({"name": "laptop"})),
    );
    let other_secret = other["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&app, "GET", "/api/runs", Some(&other_secret), None).0,
        200
    );
    let (status, _) = call(
        &app,
        "DELETE",
        &format!("/api/tokens/{}", other["id"]),
        Some(&cookie),
        None,
    );
    assert_eq!(status, 204);
    assert_error(
        &call(&app, "GET", "/api/runs", Some(&other_secret), None),
        401,
        "unauthorized",
    );
    // Another's token is not one to revoke.
    let (_, theirs) = call(
        &app,
        "POST",
        "/api/tokens",
        Some(ADMIN_TOKEN),
        Some(&json!({"name": "admins"})),
    );
    assert_error(
        &call(
            &app,
            "DELETE",
            &format!("/api/tokens/{}", theirs["id"]),
            Some(&cookie),
            None,
        ),
        404,
        "not_found",
    );
    let actions: Vec<Value> = audit(&app, "actor=tom&action=token")
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(
        actions.contains(&json!("token.create")) && actions.contains(&json!("token.delete")),
        "{actions:?}"
    );
}

#[derive(QueryableByName)]
struct Note {
    #[diesel(sql_type = diesel::sql_types::Text)]
    note: String,
}

#[test]
fn a_token_never_outranks_its_owner() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    app.new_user_token("max", "member");
    let cookie = app.login("max", "password-of-max");
    let too_high = call(
        &app,
        "POST",
        "/api/tokens",
        Some(&cookie),
        Some(&json!({"name": "x", "role": "admin"})),
    );
    assert_error(&too_high, 422, "validation");
    assert!(
        too_high.1["error"]["fields"]["role"].is_string(),
        "{}",
        too_high.1
    );
    let (_, reader) = call(
        &app,
        "POST",
        "/api/tokens",
        Some(&cookie),
        Some(&json!({"name": "reader", "role": "viewer"})),
    );
    let reader = reader["token"].as_str().unwrap().to_string();
    let run = json!({"environment_id": 3, "paths": ["test_quick.py"]});
    assert_error(
        &call(&app, "POST", "/api/runs", Some(&reader), Some(&run)),
        403,
        "forbidden",
    );

    // Demoting the owner demotes its tokens and sessions at once.
    let (_, writer) = call(
        &app,
        "POST",
        "/api/tokens",
        Some(&cookie),
        Some(&json!({"name": "writer"})),
    );
    let writer = writer["token"].as_str().unwrap().to_string();
    assert_eq!(
        call(&app, "POST", "/api/runs", Some(&writer), Some(&run)).0,
        201
    );
    let (status, _) = app.put("/api/users/max", &json!({"role": "viewer"}));
    assert_eq!(status, 200);
    assert_error(
        &call(&app, "POST", "/api/runs", Some(&writer), Some(&run)),
        403,
        "forbidden",
    );
    assert_eq!(
        call(&app, "GET", "/api/auth/me", Some(&cookie), None).1["role"],
        "viewer"
    );
    // Deleting the user ends everything of it.
    assert_eq!(app.delete("/api/users/max").0, 204);
    assert_error(
        &call(&app, "GET", "/api/runs", Some(&writer), None),
        401,
        "unauthorized",
    );
    assert_error(
        &call(&app, "GET", "/api/runs", Some(&cookie), None),
        401,
        "unauthorized",
    );
}

#[test]
fn logout_ends_the_session_at_once() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    app.new_user_token("lea", "member");
    let response = ureq::post(&app.url("/api/auth/login"))
        .send_json(json!({"username": "lea", "password": "password-of-lea"}))
        .unwrap();
    let set_cookie = response.header("set-cookie").unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "plain http here: {set_cookie}"
    );
    let me: Value = response.into_json().unwrap();
    assert_eq!(me, json!({"username": "lea", "role": "member"}));
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert_eq!(
        call(&app, "GET", "/api/auth/me", Some(&cookie), None).1["username"],
        "lea"
    );

    let out = ureq::post(&app.url("/api/auth/logout"))
        .set("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_error(
        &call(&app, "GET", "/api/auth/me", Some(&cookie), None),
        401,
        "unauthorized",
    );

    // A wrong password is a 401 that says nothing of which part was wrong.
    let wrong = call(
        &app,
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"username": "lea", "password": "nope nope"})),
    );
    assert_error(&wrong, 401, "unauthorized");
    let unknown = call(
        &app,
        "POST",
        "/api/auth/login",
        None,
        Some(&json!({"username": "nobody", "password": "nope nope"})),
    );
    assert_eq!(wrong.1["error"]["message"], unknown.1["error"]["message"]);
}

#[test]
fn behind_tls_the_session_cookie_is_secure() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[("PUBLIC_URL", "https://executor.example")]);
    app.new_user_token("sam", "member");
    let response = ureq::post(&app.url("/api/auth/login"))
        .send_json(json!({"username": "sam", "password": "password-of-sam"}))
        .unwrap();
    assert!(response.header("set-cookie").unwrap().contains("; Secure"));
}

#[test]
fn a_session_cookie_cannot_change_anything_from_another_site() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    app.new_user_token("cara", "member");
    let cookie = app.login("cara", "password-of-cara");
    let body = json!({"environment_id": 3, "paths": ["test_quick.py"]});
    let post = |headers: &[(&str, &str)]| {
        let mut request = ureq::post(&app.url("/api/runs")).set("Cookie", &cookie);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        answer(request.send_json(&body))
    };
    assert_error(
        &post(&[("Origin", "http://evil.example")]),
        403,
        "forbidden",
    );
    assert_error(&post(&[("Sec-Fetch-Site", "cross-site")]), 403, "forbidden");
    assert_error(&post(&[("Origin", "null")]), 403, "forbidden");
    let (total, _) = {
        let (_, page) = app.get("/api/runs");
        (page["total"].clone(), ())
    };
    assert_eq!(total, 0, "nothing was created");
    let own_origin = app.base.clone();
    let (status, run) = post(&[
        ("Origin", own_origin.as_str()),
        ("Sec-Fetch-Site", "same-origin"),
    ]);
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["username"], "cara");
    // Reads from anywhere are fine (the answer stays with the browser).
    let read = ureq::get(&app.url("/api/runs"))
        .set("Cookie", &cookie)
        .set("Sec-Fetch-Site", "cross-site")
        .call()
        .unwrap();
    assert_eq!(read.status(), 200);
}

#[test]
fn runs_belong_to_their_caller_who_alone_with_admins_may_cancel_or_rerun_them() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let alice = app.token_of("alice");
    let bob = app.token_of("bob");
    let body = json!({"environment_id": 8, "paths": ["test_quick.py"]});
    let (status, run) = call(&app, "POST", "/api/runs", Some(&alice), Some(&body));
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["username"], "alice", "the caller's: {run}");
    let id = run["id"].as_i64().unwrap();

    let as_bob = json!({"username": "bob", "environment_id": 8, "paths": ["test_quick.py"]});
    let refused = call(&app, "POST", "/api/runs", Some(&alice), Some(&as_bob));
    assert_error(&refused, 422, "validation");
    assert!(
        refused.1["error"]["fields"]["username"].is_string(),
        "{}",
        refused.1
    );

    app.wait_finished(id, SECS_30);
    assert_error(
        &call(
            &app,
            "POST",
            &format!("/api/runs/{id}/rerun"),
            Some(&bob),
            None,
        ),
        403,
        "forbidden",
    );
    let (status, again) = call(
        &app,
        "POST",
        &format!("/api/runs/{id}/rerun"),
        Some(&alice),
        None,
    );
    assert_eq!(status, 201, "{again}");
    let again_id = again["id"].as_i64().unwrap();
    let cancel = format!("/api/runs/{again_id}/cancel");
    let cancelled = call(&app, "POST", &cancel, Some(&bob), None);
    if app.run(again_id)["status"] == "queued" || app.run(again_id)["status"] == "running" {
        assert_error(&cancelled, 403, "forbidden");
    }
    // An admin may cancel anyone's (or finds it finished).
    let (status, _) = app.post(&cancel, &json!({}));
    assert!(status == 200 || status == 409, "{status}");
    app.wait_finished(again_id, SECS_30);

    let entries = audit(&app, "actor=alice");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"run.create") && actions.contains(&"run.rerun"),
        "{actions:?}"
    );
    let created = entries
        .iter()
        .find(|e| e["action"] == "run.create")
        .unwrap();
    assert_eq!(created["target"], format!("run {id}"));
}

#[test]
fn a_protected_environment_takes_runs_of_admins_and_its_allowed_users_only() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (status, environment) = app.put(
        "/api/environments/12",
        &json!({"protected": true, "allowed_users": ["ann"]}),
    );
    assert_eq!(status, 200, "{environment}");
    assert_eq!(environment["protected"], true);
    assert_eq!(environment["allowed_users"], json!(["ann"]));
    let body = json!({"environment_id": 12, "paths": ["test_quick.py"]});
    let refused = call(
        &app,
        "POST",
        "/api/runs",
        Some(&app.token_of("ben")),
        Some(&body),
    );
    assert_error(&refused, 403, "forbidden");
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/runs",
            Some(&app.token_of("ann")),
            Some(&body)
        )
        .0,
        201
    );
    assert_eq!(
        call(&app, "POST", "/api/runs", Some(ADMIN_TOKEN), Some(&body)).0,
        201
    );
    assert_eq!(app.get("/api/environments/12").1["protected"], true);
    let entries = audit(&app, "action=environment.update");
    assert!(
        entries[0]["detail"]
            .as_str()
            .unwrap()
            .contains("protected=true"),
        "{entries:?}"
    );
}

#[test]
fn failed_logins_are_audited_and_limited_per_user() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[("LOGIN_MAX_FAILURES", "3")]);
    app.new_user_token("rob", "member");
    let login = |password: &str| {
        call(
            &app,
            "POST",
            "/api/auth/login",
            None,
            Some(&json!({"username": "rob", "password": password})),
        )
    };
    for _ in 0..3 {
        assert_error(&login("wrong password"), 401, "unauthorized");
    }
    // Even the right password waits now.
    assert_error(&login("password-of-rob"), 429, "too_many");
    let failures = audit(&app, "action=auth.login_failed");
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(failures[0]["actor"], "rob");
    assert!(
        !failures[0].to_string().contains("wrong password"),
        "no secret in the log"
    );
    // Another user is not held back by rob's failures.
    app.new_user_token("ria", "member");
    assert_eq!(
        call(
            &app,
            "POST",
            "/api/auth/login",
            None,
            Some(&json!({"username": "ria", "password": "password-of-ria"}))
        )
        .0,
        200
    );
}

#[test]
fn the_audit_log_names_actors_and_actions_and_filters_by_them() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (status, _) = app.post(
        "/api/environments",
        &json!({"id": 101 - 1, "name": "the last"}),
    );
    assert!(status == 201 || status == 409);
    app.put("/api/environments/9", &json!({"description": "nine"}));
    app.post(
        "/api/users",
        &json!({"username": "ula", "role": "viewer", "password": "long enough"}),
    );
    app.put("/api/users/ula", &json!({"role": "member"}));
    app.delete("/api/users/ula");
    let id = app.create_run("ivy", 9, &["test_quick.py"]);
    app.wait_finished(id, SECS_30);

    let all = audit(&app, "per_page=500");
    let actions: Vec<&str> = all.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in [
        "environment.update",
        "user.create",
        "user.update",
        "user.delete",
        "run.create",
        "token.create",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    // Newest first.
    let times: Vec<&str> = all.iter().filter_map(|e| e["at"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let of_ivy = audit(&app, "actor=ivy");
    assert!(of_ivy.iter().all(|e| e["actor"] == "ivy") && !of_ivy.is_empty());
    let users: Vec<Value> = audit(&app, "action=user")
        .into_iter()
        .filter(|e| e["target"] == "user ula")
        .collect();
    assert_eq!(
        users.len(),
        3,
        "user.create, user.update, user.delete: {users:?}"
    );
    assert!(users
        .iter()
        .all(|e| e["action"].as_str().unwrap().starts_with("user.")));
    let (status, page) = app.get("/api/audit?action=user.delete");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["items"][0]["target"], "user ula");
    assert_eq!(page["items"][0]["actor"], "admin");
    assert_error(&app.get("/api/audit?per_page=0"), 400, "bad_request");
}

#[test]
fn first_start_prints_a_setup_code_that_sets_the_admin_password_once() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (_, status) = call(&app, "GET", "/api/auth/status", None, None);
    assert_eq!(status, json!({"auth": true, "setup_required": true}));
    let log = app.service_log();
    let code = log
        .split("setup code ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a setup code in the log")
        .to_string();
    let setup = |code: &str, password: &str| {
        call(
            &app,
            "POST",
            "/api/auth/setup",
            None,
            Some(&json!({"code": code, "password": password})),
        )
    };
    assert_error(
        &setup("not-the-code", "a good password"),
        401,
        "unauthorized",
    );
    assert_error(&setup(&code, "short"), 422, "validation");
    let (status, me) = setup(&code, "a good password");
    assert_eq!(status, 200, "{me}");
    assert_eq!(me, json!({"username": "admin", "role": "admin"}));
    assert_error(&setup(&code, "another password"), 401, "unauthorized");
    assert_eq!(
        call(&app, "GET", "/api/auth/status", None, None).1["setup_required"],
        false
    );
    app.login("admin", "a good password");
}

#[test]
fn admin_password_sets_the_admin_s_first_password_and_it_can_be_changed() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[("ADMIN_PASSWORD", "first password")]);
    assert!(!app.service_log().contains("setup code"));
    let cookie = app.login("admin", "first password");
    let change = |current: &str, new: &str| {
        call(
            &app,
            "POST",
            "/api/auth/password",
            Some(&cookie),
            Some(&json!({"current_password": current, "new_password": new})),
        )
    };
    assert_error(&change("not it", "second password"), 422, "validation");
    assert_eq!(change("first password", "second password").0, 204);
    assert_error(
        &call(
            &app,
            "POST",
            "/api/auth/login",
            None,
            Some(&json!({"username": "admin", "password": "first password"})),
        ),
        401,
        "unauthorized",
    );
    app.login("admin", "second password");
    assert!(
        !app.service_log().contains("second password"),
        "no secret in the log"
    );
}

#[test]
fn a_trusted_proxy_names_the_user_who_is_created_on_first_sight() {
    let tests = tests();
    let app = TestApp::spawn(
        &tests,
        &[
            ("AUTH_PROXY_HEADER", "X-Forwarded-User"),
            ("AUTH_PROXY_ADDRS", "127.0.0.1, ::1"),
            ("AUTH_PROXY_DEFAULT_ROLE", "member"),
        ],
    );
    let me = answer(
        ureq::get(&app.url("/api/auth/me"))
            .set("X-Forwarded-User", "sso.user@example.com")
            .call(),
    );
    assert_eq!(me.0, 200, "{}", me.1);
    assert_eq!(
        me.1,
        json!({"username": "sso.user@example.com", "role": "member"})
    );
    let (_, users) = app.get("/api/users");
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "sso.user@example.com" && u["has_password"] == false),
        "{users}"
    );
    let run = answer(
        ureq::post(&app.url("/api/runs"))
            .set("X-Forwarded-User", "sso.user@example.com")
            .send_json(json!({"environment_id": 2, "paths": ["test_quick.py"]})),
    );
    assert_eq!(run.0, 201, "{}", run.1);
    assert_eq!(run.1["username"], "sso.user@example.com");
    assert_eq!(
        audit(&app, "action=user.create")[0]["target"],
        "user sso.user@example.com"
    );
}

#[test]
fn a_proxy_header_from_an_untrusted_address_is_ignored() {
    let tests = tests();
    let app = TestApp::spawn(
        &tests,
        &[
            ("AUTH_PROXY_HEADER", "X-Forwarded-User"),
            ("AUTH_PROXY_ADDRS", "192.0.2.10"),
        ],
    );
    let refused = answer(
        ureq::get(&app.url("/api/auth/me"))
            .set("X-Forwarded-User", "admin")
            .call(),
    );
    assert_error(&refused, 401, "unauthorized");
    let (_, users) = app.get("/api/users");
    assert_eq!(
        users.as_array().unwrap().len(),
        1,
        "only the admin: {users}"
    );
    assert!(app.service_log().contains("AUTH_PROXY_ADDRS"));
}

#[test]
fn auth_off_lets_everyone_in_and_warns_at_start() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[("AUTH", "off")]);
    assert!(
        app.service_log().contains("AUTH=off"),
        "{}",
        app.service_log()
    );
    let (_, status) = call(&app, "GET", "/api/auth/status", None, None);
    assert_eq!(status["auth"], false);
    let (status, run) = call(
        &app,
        "POST",
        "/api/runs",
        None,
        Some(&json!({"username": "whoever", "environment_id": 4, "paths": ["test_quick.py"]})),
    );
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["username"], "whoever");
    assert_eq!(
        call(&app, "GET", "/api/auth/me", None, None).1["role"],
        "admin"
    );
    assert_eq!(call(&app, "GET", "/metrics", None, None).0, 200);
    // Browser safety stays on.
    let cross = answer(
        ureq::post(&app.url("/api/runs"))
            .set("Origin", "http://evil.example")
            .send_json(json!({"environment_id": 4, "paths": ["test_quick.py"]})),
    );
    assert_error(&cross, 403, "forbidden");
}

#[test]
fn metrics_bind_addr_serves_metrics_without_credentials_on_its_own_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tests = tests();
    let addr = format!("127.0.0.1:{port}");
    let app = TestApp::spawn(&tests, &[("METRICS_BIND_ADDR", addr.as_str())]);
    let scraped = ureq::get(&format!("http://{addr}/metrics")).call().unwrap();
    assert_eq!(scraped.status(), 200);
    assert!(scraped.into_string().unwrap().contains("test_executor_"));
    assert_error(&app.get_anonymous("/metrics"), 401, "unauthorized");
}

#[test]
fn the_openapi_document_carries_the_security_schemes_and_their_answers() {
    let tests = tests();
    let app = TestApp::spawn(&tests, &[]);
    let (_, doc) = app.get_anonymous("/api/openapi.json");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["session"]["in"], "cookie", "{schemes}");
    let create = &doc["paths"]["/api/runs"]["post"];
    assert!(create["responses"]["401"].is_object() && create["responses"]["403"].is_object());
    assert_eq!(doc["paths"]["/api/health"]["get"]["security"], json!([{}]));
    assert!(doc["paths"]["/api/audit"]["get"].is_object());
}

const CALLS_THE_API: &str = "import json, os, urllib.request\n\n\
def test_me():\n    request = urllib.request.Request(os.environ['EXECUTOR_URL'] + '/api/auth/me',\n        \
headers={'Authorization': 'Bearer ' + os.environ['EXECUTOR_TOKEN']})\n    \
me = json.load(urllib.request.urlopen(request))\n    assert me['username'] == 'tess', me\n";

/// The names of `user`'s API tokens.
fn token_names(app: &TestApp, user: &str) -> Vec<String> {
    let (_, tokens) = app.request_as(user, "GET", "/api/tokens");
    tokens
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_run_s_tests_call_the_api_as_its_user_with_a_token_revoked_at_its_end() {
    let tests = TestsDir::with(&[("test_me.py", CALLS_THE_API)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("tess", 5, &["test_me.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "success", "{}", app.log_text(id));
    assert_eq!(
        token_names(&app, "tess"),
        ["suite"],
        "the run's token is gone"
    );
    assert!(!app.service_log().contains("te_"), "no token in the log");
}

/// The nastiest way to get a run's token: from the finish of the run
/// before it on the same environment, which starts it in the same call.
/// Each run's tests still call the API as its user, and both tokens are
/// revoked at their runs' ends.
#[test]
fn a_run_handed_its_environment_by_the_run_before_gets_a_token_of_its_own() {
    let slow = format!(
        "import time\n{CALLS_THE_API}\ndef test_long_enough_for_the_next_to_queue():\n    time.sleep(1)\n"
    );
    let tests = TestsDir::with(&[("test_me.py", CALLS_THE_API), ("test_slow_me.py", &slow)]);
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("tess", 5, &["test_slow_me.py"]);
    let second = app.create_run("tess", 5, &["test_me.py"]);
    assert_eq!(
        app.run(second)["status"],
        "queued",
        "it waits for the first"
    );
    for id in [first, second] {
        let run = app.wait_finished(id, SECS_30);
        assert_eq!(run["status"], "success", "{}", app.log_text(id));
    }
    assert_eq!(
        token_names(&app, "tess"),
        ["suite"],
        "both runs' tokens are gone"
    );
}
