"""Runs end to end: create, wait, read the outcome, the cases and the log;
a failing run and its rerun; cancelling.

Every run goes to another environment than the one running these tests.
"""

from datetime import datetime

import pytest

pytestmark = pytest.mark.selftest

FAST = "smoke/test_fast.py"
FAST_NODE_IDS = {
    f"{FAST}::test_arithmetic",
    f"{FAST}::test_strings",
    f"{FAST}::test_sorting_is_stable",
    f"{FAST}::test_json_round_trip",
    f"{FAST}::test_square[0-0]",
    f"{FAST}::test_square[3-9]",
    f"{FAST}::test_square[12-144]",
    f"{FAST}::TestCollections::test_set_union",
    f"{FAST}::TestCollections::test_dict_merge",
}
FAILING = "dummy/test_fail.py"
FAILING_NODE_ID = f"{FAILING}::test_total_fails_on_purpose"
RUN_FIELDS = {
    "id", "username", "environment_id", "paths", "status", "status_reason", "created_at",
    "started_at", "finished_at", "duration_ms", "exit_code", "queue_position", "summary",
}


def parse_time(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def created(api, username, other_environment):
    """The answer to creating a run of smoke/test_fast.py."""
    answer = api.post(
        "/api/runs", {"username": username, "environment_id": other_environment, "paths": [FAST]}
    )
    return answer.expect(201)


@pytest.fixture(scope="module")
def finished(api, created):
    return api.wait_until_final(created.json()["id"])


@pytest.fixture(scope="module")
def full_log(api, finished):
    return api.get(f"/api/runs/{finished['id']}/log?offset=0").expect(200).json()


@pytest.fixture(scope="module")
def failed_run(api, username, other_environment):
    run = api.create_run(username, other_environment, [FAILING])
    return api.wait_until_final(run["id"])


def test_a_new_run_is_queued(created, username, other_environment):
    run = created.json()
    missing = RUN_FIELDS - run.keys()
    assert not missing, f"the run lacks {sorted(missing)}"
    assert run["status"] == "queued"
    assert run["username"] == username
    assert run["environment_id"] == other_environment
    assert run["paths"] == [FAST]
    assert run["finished_at"] is None and run["exit_code"] is None
    assert created.headers.get("Location") == f"/api/runs/{run['id']}"


def test_the_run_succeeds(finished):
    assert finished["status"] == "success", f"run {finished['id']}: {finished['status']} ({finished['status_reason']})"
    assert finished["exit_code"] == 0
    assert finished["queue_position"] is None
    assert finished["started_at"] and finished["finished_at"]
    assert parse_time(finished["started_at"]) <= parse_time(finished["finished_at"])
    assert isinstance(finished["duration_ms"], int) and finished["duration_ms"] >= 0


def test_the_summary_counts_every_test(finished):
    summary = finished["summary"]
    assert summary["total"] == len(FAST_NODE_IDS)
    assert summary["passed"] == len(FAST_NODE_IDS)
    assert (summary["failed"], summary["skipped"], summary["errors"]) == (0, 0, 0)


def test_cases_are_pytest_node_ids(api, finished):
    cases = api.get(f"/api/runs/{finished['id']}/cases").expect(200).json()
    assert {case["nodeid"] for case in cases} == FAST_NODE_IDS
    for case in cases:
        assert case["outcome"] == "passed", case
        assert isinstance(case["duration_ms"], int) and case["duration_ms"] >= 0, case
        assert case["message"] is None, case


def test_the_log_is_complete(api, full_log):
    assert full_log["offset"] == 0
    assert full_log["complete"] is True
    assert full_log["next_offset"] == len(full_log["content"].encode("utf-8"))
    text = api.strip_ansi(full_log["content"])
    assert f"{FAST}::test_square[3-9] PASSED" in text
    assert f"{len(FAST_NODE_IDS)} passed" in text


def test_the_log_reads_on_from_an_offset(api, finished, full_log):
    raw = full_log["content"].encode("utf-8")
    middle = raw.index(b"\n") + 1
    part = api.get(f"/api/runs/{finished['id']}/log?offset={middle}").expect(200).json()
    assert part["offset"] == middle
    assert part["content"].encode("utf-8") == raw[middle:]
    assert part["next_offset"] == len(raw)
    end = api.get(f"/api/runs/{finished['id']}/log?offset={len(raw)}").expect(200).json()
    assert end["content"] == ""
    assert end["next_offset"] == len(raw)
    assert end["complete"] is True


def test_the_log_as_text(api, finished, full_log):
    answer = api.get(f"/api/runs/{finished['id']}/log.txt").expect(200)
    assert answer.content_type.startswith("text/plain"), answer.content_type
    assert answer.text == full_log["content"]


def test_the_list_filters_by_user(api, finished, username):
    page = api.get(f"/api/runs?username={username}&per_page=500").expect(200).json()
    assert page["page"] == 1 and page["per_page"] == 500
    ids = [run["id"] for run in page["items"]]
    assert finished["id"] in ids
    assert all(run["username"] == username for run in page["items"])
    assert page["total"] == len(ids)
    assert ids == sorted(ids, reverse=True), "runs are not listed newest first"


def test_the_list_filters_by_environment_and_status(api, finished, other_environment):
    query = f"environment_id={other_environment}&status=success&per_page=5"
    page = api.get(f"/api/runs?{query}").expect(200).json()
    assert page["per_page"] == 5 and len(page["items"]) <= 5
    assert all(run["environment_id"] == other_environment for run in page["items"])
    assert all(run["status"] == "success" for run in page["items"])
    assert page["total"] >= 1


def test_a_failing_run_is_failed_with_the_message(api, failed_run):
    assert failed_run["status"] == "failed", f"{failed_run['status']} ({failed_run['status_reason']})"
    assert failed_run["exit_code"] == 1
    summary = failed_run["summary"]
    assert (summary["total"], summary["passed"], summary["failed"]) == (2, 1, 1)
    cases = {case["nodeid"]: case for case in api.get(f"/api/runs/{failed_run['id']}/cases").expect(200).json()}
    assert cases[FAILING_NODE_ID]["outcome"] == "failed"
    assert "expected the total to be 10, got 7" in (cases[FAILING_NODE_ID]["message"] or "")
    assert cases[f"{FAILING}::test_total_of_one_item"]["outcome"] == "passed"


def test_rerun_of_failed_cases_runs_only_those(api, failed_run):
    answer = api.post(f"/api/runs/{failed_run['id']}/rerun?failed_only=true").expect(201)
    rerun = answer.json()
    assert rerun["id"] != failed_run["id"]
    assert rerun["paths"] == [FAILING_NODE_ID]
    assert rerun["environment_id"] == failed_run["environment_id"]
    assert rerun["username"] == failed_run["username"]
    finished = api.wait_until_final(rerun["id"])
    assert finished["status"] == "failed"
    assert finished["summary"]["total"] == 1


def test_rerun_of_failed_cases_needs_a_failure(api, finished):
    answer = api.post(f"/api/runs/{finished['id']}/rerun?failed_only=true")
    api.expect_error(answer, 422, "validation", fields=False)


def test_a_full_rerun_repeats_the_paths(api, finished):
    rerun = api.post(f"/api/runs/{finished['id']}/rerun").expect(201).json()
    assert rerun["paths"] == finished["paths"]
    assert api.wait_until_final(rerun["id"])["status"] == "success"


def test_cancel_stops_a_run_and_only_once(api, username, other_environment):
    run = api.create_run(username, other_environment, ["dummy/test_slow.py"])
    answer = api.post(f"/api/runs/{run['id']}/cancel").expect(200)
    assert answer.json()["id"] == run["id"]
    final = api.wait_until_final(run["id"], timeout=60)
    assert final["status"] == "cancelled", f"{final['status']} ({final['status_reason']})"
    assert final["finished_at"] is not None
    api.expect_error(api.post(f"/api/runs/{run['id']}/cancel"), 409, "conflict")
