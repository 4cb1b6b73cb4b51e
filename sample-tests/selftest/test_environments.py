"""Environments: the list, one environment, unknown ids."""

import pytest

pytestmark = pytest.mark.selftest

FIELDS = {"id", "name", "description", "variables", "run_timeout_secs", "state", "current_run_id", "queued"}


def check_environment(environment):
    missing = FIELDS - environment.keys()
    assert not missing, f"environment {environment.get('id')} lacks {sorted(missing)}"
    assert 1 <= environment["id"] <= 100
    assert isinstance(environment["name"], str) and environment["name"]
    assert isinstance(environment["variables"], dict)
    assert environment["state"] in ("idle", "busy")
    assert isinstance(environment["queued"], int) and environment["queued"] >= 0
    if environment["state"] == "idle":
        assert environment["current_run_id"] is None
    else:
        assert isinstance(environment["current_run_id"], int)


def test_list_is_sorted_by_id(api):
    environments = api.get("/api/environments").expect(200).json()
    assert isinstance(environments, list) and environments, "no environment at all"
    ids = [environment["id"] for environment in environments]
    assert ids == sorted(set(ids)), "environments are not listed by id, or an id repeats"
    for environment in environments:
        check_environment(environment)


def test_one_environment(api, other_environment):
    environment = api.get(f"/api/environments/{other_environment}").expect(200).json()
    check_environment(environment)
    assert environment["id"] == other_environment


def test_our_own_environment_is_busy_with_this_run(api, own_environment):
    if own_environment is None:
        pytest.skip("TEST_ENV_ID is not set: not running inside the executor")
    environment = api.get(f"/api/environments/{own_environment}").expect(200).json()
    assert environment["state"] == "busy", f"environment {own_environment} runs us but says idle"
    run = api.get(f"/api/runs/{environment['current_run_id']}").expect(200).json()
    assert run["status"] == "running"
    assert run["environment_id"] == own_environment


@pytest.mark.parametrize("environment_id", [101, 999999])
def test_unknown_environment_is_404(api, environment_id):
    api.expect_error(api.get(f"/api/environments/{environment_id}"), 404, "not_found")


def test_creating_an_environment_out_of_range_is_rejected(api):
    answer = api.post(
        "/api/environments",
        {"id": 0, "name": "zero", "description": "", "variables": {}, "run_timeout_secs": None},
    )
    error = api.expect_error(answer, 422, "validation")
    assert "id" in error["fields"], f"fields do not name id: {error['fields']}"
