"""Black-box tests of the executor's own REST API, standard library only.

They talk to the service at EXECUTOR_URL, which the executor sets for every
run (set it by hand to check a service from outside), and skip without it.
EXECUTOR_TOKEN, an API token of the run's user that the executor gives
every run (or one of your own), is sent as its credentials.

Run inside the executor, these tests occupy the environment TEST_ENV_ID
until they finish: any run they create goes to another environment, or
they would wait on themselves.
"""

import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid

import pytest

FINAL = {"success", "failed", "error", "cancelled"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Environments for the runs these tests create: high ids, rarely used.
CANDIDATE_ENVIRONMENTS = (97, 98, 99, 96, 95, 94, 93)


def strip_ansi(text):
    return ANSI.sub("", text)


class Answer:
    def __init__(self, method, url, status, headers, body):
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "")

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        assert "application/json" in self.content_type, (
            f"{self}: Content-Type is {self.content_type!r}, not JSON; body: {self.body[:300]!r}"
        )
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise AssertionError(f"{self}: the body is not JSON ({error}): {self.body[:300]!r}")

    def expect(self, status):
        assert self.status == status, (
            f"{self}: expected {status}, got {self.status}; body: {self.body[:500]!r}"
        )
        return self

    def __str__(self):
        return f"{self.method} {self.url}"


class Api:
    """A small client of the REST API (docs/API.md)."""

    FINAL = FINAL

    def __init__(self, base, token=None):
        self.base = base.rstrip("/")
        self.token = token

    @staticmethod
    def strip_ansi(text):
        return strip_ansi(text)

    def request(self, method, path, *, json_body=None, data=None, content_type=None, timeout=15):
        url = self.base + path
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = content_type or "application/json"
        if content_type is not None:
            headers["Content-Type"] = content_type
        if data is None and method in ("POST", "PUT"):
            data = b""
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return Answer(method, path, response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer(method, path, error.code, error.headers, error.read())
        except urllib.error.URLError as error:
            pytest.fail(f"{method} {url}: cannot reach the executor: {error.reason}")

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json_body=None, **kwargs):
        return self.request("POST", path, json_body=json_body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def expect_error(self, answer, status, code, fields=True):
        """Checks the error body of docs/API.md and returns its `error` object;
        a validation error names its fields (unless `fields` is false)."""
        answer.expect(status)
        body = answer.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), dict), (
            f"{answer}: no {{'error': {{...}}}} body: {body!r}"
        )
        error = body["error"]
        assert error.get("code") == code, f"{answer}: error code {error.get('code')!r}, expected {code!r}"
        assert isinstance(error.get("message"), str) and error["message"], f"{answer}: empty message"
        if code == "validation" and fields:
            assert isinstance(error.get("fields"), dict) and error["fields"], (
                f"{answer}: a validation error must name its fields: {error!r}"
            )
        return error

    def create_run(self, username, environment_id, paths):
        answer = self.post(
            "/api/runs",
            {"username": username, "environment_id": environment_id, "paths": paths},
        ).expect(201)
        return answer.json()

    def wait_until_final(self, run_id, timeout=180):
        """Polls a run until it has a final status; returns the run."""
        deadline = time.monotonic() + timeout
        run = None
        while time.monotonic() < deadline:
            run = self.get(f"/api/runs/{run_id}").expect(200).json()
            if run["status"] in FINAL:
                return run
            time.sleep(0.3)
        pytest.fail(
            f"run {run_id} is still {run and run['status']} after {timeout} s "
            f"(queue position {run and run.get('queue_position')}); "
            "with MAX_PARALLEL_RUNS=1 a run started from a run can never start"
        )


@pytest.fixture(scope="session")
def api():
    base = os.environ.get("EXECUTOR_URL")
    if not base:
        pytest.skip("EXECUTOR_URL is not set: these tests check a running executor")
    return Api(base, os.environ.get("EXECUTOR_TOKEN") or None)


@pytest.fixture(scope="session")
def own_environment():
    """The environment this run occupies, if it runs inside the executor."""
    value = os.environ.get("TEST_ENV_ID")
    return int(value) if value and value.isdigit() else None


@pytest.fixture(scope="session")
def other_environment(api, own_environment):
    """An environment other than ours for the runs we create: an idle one
    if there is one among the candidates, else the first that exists."""
    existing = []
    for candidate in CANDIDATE_ENVIRONMENTS:
        if candidate == own_environment:
            continue
        answer = api.get(f"/api/environments/{candidate}")
        if answer.status != 200:
            continue
        environment = answer.json()
        if environment["state"] == "idle" and environment["queued"] == 0:
            return candidate
        existing.append(candidate)
    if not existing:
        pytest.fail(f"none of the environments {CANDIDATE_ENVIRONMENTS} exists")
    return existing[0]


@pytest.fixture(scope="session")
def username(api):
    """The user our runs belong to: the token's, where the service has
    accounts; else a name of our own, so that filtering by it finds only
    our runs."""
    answer = api.get("/api/auth/me")
    if answer.status == 200 and api.token:
        return answer.json()["username"]
    return f"selftest-{uuid.uuid4().hex[:12]}"
