"""Bad input gets a clear 4xx with the JSON error body, and changes nothing."""

import pytest

pytestmark = pytest.mark.selftest

GOOD_PATHS = ["smoke/test_fast.py"]


def body(username, environment_id, paths):
    return {"username": username, "environment_id": environment_id, "paths": paths}


INVALID_RUNS = [
    pytest.param("username", lambda u, e: body("", e, GOOD_PATHS), id="empty-username"),
    pytest.param("username", lambda u, e: body("   ", e, GOOD_PATHS), id="blank-username"),
    pytest.param("username", lambda u, e: body("x" * 65, e, GOOD_PATHS), id="long-username"),
    pytest.param("username", lambda u, e: body(u + "\x07", e, GOOD_PATHS), id="control-char"),
    pytest.param("environment_id", lambda u, e: body(u, 0, GOOD_PATHS), id="environment-0"),
    pytest.param("environment_id", lambda u, e: body(u, 101, GOOD_PATHS), id="environment-101"),
    pytest.param("paths", lambda u, e: body(u, e, []), id="no-paths"),
    pytest.param("paths", lambda u, e: body(u, e, GOOD_PATHS * 2), id="duplicate-paths"),
    pytest.param("paths", lambda u, e: body(u, e, ["smoke/test_missing.py"]), id="missing-file"),
    pytest.param("paths", lambda u, e: body(u, e, ["../etc/passwd"]), id="outside-the-root"),
    pytest.param("paths", lambda u, e: body(u, e, ["/etc/passwd"]), id="absolute-path"),
    pytest.param("paths", lambda u, e: body(u, e, ["no_such_dir"]), id="missing-directory"),
]


def runs_of(api, username):
    return api.get(f"/api/runs?username={username}").expect(200).json()["total"]


@pytest.mark.parametrize(("field", "make_body"), INVALID_RUNS)
def test_an_invalid_run_is_422_naming_the_field(api, username, other_environment, field, make_body):
    name = f"{username}-bad"
    before = runs_of(api, name)
    answer = api.post("/api/runs", make_body(name, other_environment))
    error = api.expect_error(answer, 422, "validation")
    assert any(key == field or key.startswith(field) for key in error["fields"]), (
        f"fields should name {field!r}: {error['fields']}"
    )
    assert runs_of(api, name) == before, "a rejected run was stored"


def test_a_missing_field_is_a_client_error(api, other_environment):
    answer = api.post("/api/runs", {"environment_id": other_environment, "paths": GOOD_PATHS})
    assert answer.status in (400, 422), f"{answer}: {answer.status}"
    api.expect_error(answer, answer.status, "bad_request" if answer.status == 400 else "validation", fields=False)


def test_a_wrong_type_is_a_client_error(api, username):
    answer = api.post("/api/runs", {"username": username, "environment_id": "seven", "paths": GOOD_PATHS})
    assert answer.status in (400, 422), f"{answer}: {answer.status}"


def test_malformed_json_is_400(api):
    answer = api.post("/api/runs", data=b'{"username": "selftest", ', content_type="application/json")
    api.expect_error(answer, 400, "bad_request")


def test_a_wrong_content_type_is_400(api, username, other_environment):
    data = b'{"username": "%s", "environment_id": %d, "paths": ["smoke/test_fast.py"]}' % (
        username.encode(),
        other_environment,
    )
    answer = api.post("/api/runs", data=data, content_type="text/plain")
    api.expect_error(answer, 400, "bad_request")


def test_a_bad_query_string_is_400(api):
    api.expect_error(api.get("/api/runs?page=abc"), 400, "bad_request")


def test_per_page_over_500_is_rejected(api):
    answer = api.get("/api/runs?per_page=501")
    assert answer.status in (400, 422), f"{answer}: {answer.status}"
