"""Calls an HTTP API and checks its JSON answer (standard library only).

The URL comes from the environment variable API_URL (set it in an
environment's variables), else the executor's own health endpoint
(EXECUTOR_URL + "/api/health").
"""

import json
import os
import urllib.error
import urllib.request

import pytest


def _target():
    if os.environ.get("API_URL"):
        return os.environ["API_URL"]
    if os.environ.get("EXECUTOR_URL"):
        return os.environ["EXECUTOR_URL"].rstrip("/") + "/api/health"
    return None


URL = _target()

pytestmark = pytest.mark.skipif(
    URL is None, reason="neither API_URL nor EXECUTOR_URL is set: no API to call"
)


@pytest.fixture(scope="module")
def answer():
    request = urllib.request.Request(URL, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()
    except urllib.error.URLError as error:
        pytest.fail(f"cannot reach {URL}: {error.reason}")


def test_answers_200(answer):
    status, _, body = answer
    assert status == 200, f"GET {URL} answered {status}: {body[:200]!r}"


def test_answers_json(answer):
    _, content_type, body = answer
    assert "json" in content_type, f"GET {URL}: Content-Type is {content_type!r}, not JSON"
    try:
        document = json.loads(body)
    except ValueError as error:
        pytest.fail(f"GET {URL}: the body is not JSON ({error}): {body[:200]!r}")
    assert isinstance(document, (dict, list)), f"GET {URL}: expected an object or a list"


def test_health_says_ok(answer):
    if not URL.rstrip("/").endswith("/health"):
        pytest.skip(f"{URL} is not a health endpoint")
    _, _, body = answer
    document = json.loads(body)
    assert document.get("status") == "ok", f"GET {URL}: status is {document.get('status')!r}"
    if "database" in document:
        assert document["database"] == "ok", f"GET {URL}: database is {document['database']!r}"
