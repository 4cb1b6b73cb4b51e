//! Creating, reading, listing, cancelling and re-running runs.

use serde_json::json;
use std::time::{Duration, Instant};

use crate::helpers::*;

const PASSING: &str =
    "def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    print('hello from test_two')\n";
const MIXED: &str = "def test_ok():\n    pass\n\ndef test_broken():\n    assert 2 * 2 == 5, 'arithmetic is off'\n\ndef test_also_broken():\n    raise RuntimeError('boom')\n";
/// Ten tests of 0.3 s: pytest reports each as it finishes.
const SLOW: &str = "import time, pytest\n\n@pytest.mark.parametrize('tick', range(10))\ndef test_slow(tick):\n    print(f'tick {tick}')\n    time.sleep(0.3)\n";

fn tests_dir() -> TestsDir {
    TestsDir::with(&[
        ("smoke/test_pass.py", PASSING),
        ("smoke/test_mixed.py", MIXED),
        ("slow/test_slow.py", SLOW),
    ])
}

#[test]
fn a_created_run_is_queued_then_succeeds_with_its_cases_and_log() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let response = ureq::post(&app.url("/api/runs"))
        .set(
            "Authorization",
            &format!("Bearer {}", app.token_of("alice")),
        )
        .send_json(
            json!({"username": "  alice ", "environment_id": 7, "paths": ["smoke/test_pass.py"]}),
        )
        .expect("201");
    assert_eq!(response.status(), 201);
    let location = response.header("Location").unwrap_or_default().to_string();
    let run: serde_json::Value = response.into_json().expect("a run");
    assert_eq!(location, format!("/api/runs/{}", run["id"]));
    assert_eq!(run["status"], "queued");
    assert_eq!(run["username"], "alice", "the name is trimmed");
    assert_eq!(run["environment_id"], 7);
    assert_eq!(run["paths"], json!(["smoke/test_pass.py"]));
    assert_eq!(run["queue_position"], 1);
    assert!(run["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));

    let id = run["id"].as_i64().expect("id");
    let done = app.wait_finished(id, SECS_30);
    assert_eq!(done["status"], "success", "{done}");
    assert_eq!(done["exit_code"], 0);
    assert_eq!(done["queue_position"], json!(null));
    assert!(done["duration_ms"].as_i64().is_some());
    assert!(done["started_at"].is_string() && done["finished_at"].is_string());
    assert_eq!(done["summary"]["total"], 2);
    assert_eq!(done["summary"]["passed"], 2);
    assert_eq!(done["summary"]["failed"], 0);

    let (status, cases) = app.get(&format!("/api/runs/{id}/cases"));
    assert_eq!(status, 200);
    let ids: Vec<&str> = cases
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["nodeid"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "smoke/test_pass.py::test_one",
            "smoke/test_pass.py::test_two"
        ]
    );
    assert!(cases
        .as_array()
        .into_iter()
        .flatten()
        .all(|c| c["outcome"] == "passed"));

    let (status, log) = app.get(&format!("/api/runs/{id}/log?offset=0"));
    assert_eq!(status, 200);
    assert_eq!(log["complete"], true);
    assert_eq!(log["offset"], 0);
    let content = log["content"].as_str().expect("text");
    assert_eq!(log["next_offset"].as_i64(), Some(content.len() as i64));
    let last_line = plain(content)
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        last_line.contains("2 passed in"),
        "ends with pytest's summary: {last_line}"
    );

    let (status, content_type, text) = app.get_text(&format!("/api/runs/{id}/log.txt"));
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(text, content);
}

#[test]
fn a_failing_run_is_failed_and_its_cases_carry_messages() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("bob", 3, &["smoke/test_mixed.py"]);
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 1);
    assert_eq!(run["summary"]["failed"], 2);
    assert_eq!(run["summary"]["passed"], 1);
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    let broken = cases
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["nodeid"] == "smoke/test_mixed.py::test_broken")
        .expect("the broken case");
    assert_eq!(broken["outcome"], "failed");
    assert!(
        broken["message"]
            .as_str()
            .is_some_and(|m| m.contains("arithmetic is off")),
        "{broken}"
    );
}

#[test]
fn a_running_run_shows_a_growing_log_and_queued_ones_their_position() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let slow = app.create_run("carol", 5, &["slow/test_slow.py"]);
    let second = app.create_run("carol", 5, &["smoke/test_pass.py"]);
    let third = app.create_run("carol", 5, &["smoke/test_pass.py"]);
    app.wait_run(slow, SECS_30, |r| r["status"] == "running");
    // Progress while running: the total once collected, then the passes.
    let progress = app.wait_run(slow, SECS_30, |r| {
        r["summary"]["passed"].as_i64().unwrap_or(0) >= 1 || r["status"] != "running"
    });
    assert_eq!(progress["status"], "running", "{progress}");
    assert_eq!(progress["summary"]["total"], 10, "{progress}");
    assert_eq!(app.run(second)["queue_position"], 1);
    assert_eq!(app.run(third)["queue_position"], 2);

    // The log grows while the test runs, read incrementally by offset.
    let mut offset = 0;
    let mut text = String::new();
    let mut growths = 0;
    let mut grew_at = Instant::now();
    loop {
        let (status, chunk) = app.get(&format!("/api/runs/{slow}/log?offset={offset}"));
        assert_eq!(status, 200);
        assert_eq!(chunk["offset"], offset);
        let content = chunk["content"].as_str().unwrap_or_default();
        if !content.is_empty() {
            growths += 1;
            grew_at = Instant::now();
        }
        text.push_str(content);
        offset = chunk["next_offset"].as_i64().expect("next offset");
        if chunk["complete"] == true {
            break;
        }
        assert!(
            grew_at.elapsed() < scaled(SECS_30),
            "the log of run {slow} stopped growing: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(growths >= 3, "the log grew {growths} times");
    assert!(text.contains("test_slow[0]") && text.contains("test_slow[9]"));
    assert_eq!(text, app.log_text(slow));
    app.wait_finished(third, SECS_30);
}

#[test]
fn cancelling_a_queued_run_finishes_it_at_once_and_a_finished_one_is_refused() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let slow = app.create_run("dave", 9, &["slow/test_slow.py"]);
    let queued = app.create_run("dave", 9, &["smoke/test_pass.py"]);
    let (status, run) = app.post(&format!("/api/runs/{queued}/cancel"), &json!({}));
    assert_eq!(status, 200);
    assert_eq!(run["status"], "cancelled");
    assert!(run["finished_at"].is_string());
    assert_error(
        &app.post(&format!("/api/runs/{queued}/cancel"), &json!({})),
        409,
        "conflict",
    );
    app.wait_finished(slow, SECS_30);
    assert_eq!(
        app.run(queued)["status"],
        "cancelled",
        "a cancelled run never starts"
    );
    assert_error(
        &app.post("/api/runs/999999/cancel", &json!({})),
        404,
        "not_found",
    );
}

#[test]
fn cancelling_a_running_run_stops_it_and_the_next_one_starts() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let slow = app.create_run("erin", 11, &["slow/test_slow.py"]);
    let next = app.create_run("erin", 11, &["smoke/test_pass.py"]);
    app.wait_run(slow, SECS_30, |r| r["status"] == "running");
    let (status, run) = app.post(&format!("/api/runs/{slow}/cancel"), &json!({}));
    assert_eq!(status, 200);
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(app.wait_finished(next, SECS_30)["status"], "success");
    let (_, env) = app.get("/api/environments/11");
    assert_eq!(env["state"], "idle");
}

#[test]
fn rerun_repeats_a_run_and_failed_only_repeats_exactly_its_failures() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let first = app.create_run("fay", 2, &["smoke"]);
    app.wait_finished(first, SECS_30);

    let (status, again) = app.post(&format!("/api/runs/{first}/rerun"), &json!({}));
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["paths"], json!(["smoke"]));
    assert_eq!(again["username"], "fay");
    assert_eq!(again["environment_id"], 2);

    let (status, failed) = app.post(
        &format!("/api/runs/{first}/rerun?failed_only=true"),
        &json!({}),
    );
    assert_eq!(status, 201, "{failed}");
    assert_eq!(
        failed["paths"],
        json!([
            "smoke/test_mixed.py::test_broken",
            "smoke/test_mixed.py::test_also_broken"
        ])
    );
    let id = failed["id"].as_i64().expect("id");
    let run = app.wait_finished(id, SECS_30);
    assert_eq!(run["summary"]["total"], 2);
    assert_eq!(run["summary"]["failed"], 2);
    let (_, cases) = app.get(&format!("/api/runs/{id}/cases"));
    assert_eq!(cases.as_array().map(Vec::len), Some(2));

    let passing = app.create_run("fay", 2, &["smoke/test_pass.py"]);
    app.wait_finished(passing, SECS_30);
    assert_error(
        &app.post(
            &format!("/api/runs/{passing}/rerun?failed_only=true"),
            &json!({}),
        ),
        422,
        "validation",
    );
}

#[test]
fn the_list_is_newest_first_filtered_and_paged() {
    let tests = tests_dir();
    let app = TestApp::spawn(&tests, &[]);
    let mut ids = Vec::new();
    for (user, env) in [("gus", 20), ("hal", 21), ("gus", 21), ("gus", 20)] {
        ids.push(app.create_run(user, env, &["smoke/test_pass.py"]));
    }
    let (status, page) = app.get("/api/runs");
    assert_eq!(status, 200);
    assert_eq!(page["total"], 4);
    assert_eq!(page["page"], 1);
    assert_eq!(page["per_page"], 50);
    let listed: Vec<i64> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_i64())
        .collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);

    let (_, gus) = app.get("/api/runs?username=gus");
    assert_eq!(gus["total"], 3);
    let (_, env21) = app.get("/api/runs?environment_id=21&per_page=1&page=2");
    assert_eq!(env21["total"], 2);
    assert_eq!(env21["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(env21["items"][0]["id"], ids[1]);
    for id in &ids {
        app.wait_finished(*id, SECS_30);
    }
    let (_, done) = app.get("/api/runs?status=success");
    assert_eq!(done["total"], 4);
    let (_, none) = app.get("/api/runs?status=queued");
    assert_eq!(none["total"], 0);

    for bad in [
        "status=done",
        "per_page=0",
        "per_page=501",
        "page=0",
        "page=x",
        "environment_id=abc",
    ] {
        assert_error(&app.get(&format!("/api/runs?{bad}")), 400, "bad_request");
    }
}

/// Prints a line with characters of two and three bytes every 200 ms, so
/// that the log is stored as several chunks.
const TALKS_IN_UTF8: &str = "import time\n\n\
def test_talks():\n    \
    for i in range(6):\n        \
        print(f'line {i}: grüße ✓', flush=True)\n        \
        time.sleep(0.2)\n";

#[test]
fn the_log_from_any_offset_is_the_rest_of_the_log_from_the_next_whole_character() {
    let tests = TestsDir::with(&[("test_talks.py", TALKS_IN_UTF8)]);
    let app = TestApp::spawn(&tests, &[]);
    let id = app.create_run("dora", 7, &["test_talks.py"]);
    app.wait_finished(id, SECS_30);
    let whole = app.log_text(id);
    assert!(whole.contains("line 5: grüße ✓"), "{whole}");
    let end = whole.len() as i64;
    // Chunk starts and ends, the middle of a chunk and of a character, the
    // end and past it: every offset of the last lines (where the test
    // printed), every seventh before them.
    let offsets = (0..=end + 2).filter(|offset| offset % 7 == 0 || *offset > end - 400);
    for offset in offsets {
        let (status, answer) = app.get(&format!("/api/runs/{id}/log?offset={offset}"));
        assert_eq!(status, 200, "{answer}");
        let from = (offset.min(end) as usize..=whole.len())
            .find(|&i| whole.is_char_boundary(i))
            .unwrap_or(whole.len());
        assert_eq!(
            answer["content"].as_str(),
            Some(&whole[from..]),
            "offset {offset}"
        );
        assert_eq!(
            answer["next_offset"].as_i64(),
            Some(offset.max(end)),
            "offset {offset}"
        );
        assert_eq!(answer["complete"], true, "offset {offset}");
    }
}
