"""Unknown ids and paths are 404 with the JSON error body."""

import pytest

pytestmark = pytest.mark.selftest

UNKNOWN_RUN = 999999999


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/runs/{UNKNOWN_RUN}"),
        ("GET", f"/api/runs/{UNKNOWN_RUN}/log?offset=0"),
        ("GET", f"/api/runs/{UNKNOWN_RUN}/log.txt"),
        ("GET", f"/api/runs/{UNKNOWN_RUN}/cases"),
        ("POST", f"/api/runs/{UNKNOWN_RUN}/cancel"),
        ("POST", f"/api/runs/{UNKNOWN_RUN}/rerun"),
        ("GET", "/api/environments/999999"),
        ("GET", "/api/tests/smoke/test_no_such_file.py"),
        ("DELETE", "/api/tests/smoke/test_no_such_file.py"),
        ("GET", "/api/no-such-endpoint"),
    ],
)
def test_unknown_is_404(api, method, path):
    api.expect_error(api.request(method, path), 404, "not_found")


def test_a_path_escaping_the_tests_root_is_never_served(api):
    answer = api.get("/api/tests/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert answer.status in (400, 404, 422), f"{answer}: {answer.status}"
    assert b"root:" not in answer.body
