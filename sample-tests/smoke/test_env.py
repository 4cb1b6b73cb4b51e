"""The executor tells a test which environment it runs on.

Inside the executor TEST_ENV_ID and TEST_ENV_NAME are always set; run by
hand without them, these tests skip.
"""

import json
import os
import re
import urllib.error
import urllib.request

import pytest

ENV_ID = os.environ.get("TEST_ENV_ID")
ENV_NAME = os.environ.get("TEST_ENV_NAME")

pytestmark = pytest.mark.skipif(
    ENV_ID is None and ENV_NAME is None,
    reason="TEST_ENV_ID and TEST_ENV_NAME are not set: not running inside the executor",
)


def test_environment_id_and_name_are_set():
    assert ENV_ID is not None, "TEST_ENV_NAME is set but TEST_ENV_ID is not"
    assert ENV_NAME is not None, "TEST_ENV_ID is set but TEST_ENV_NAME is not"
    assert ENV_NAME.strip(), "TEST_ENV_NAME is empty"


def test_environment_id_is_in_range():
    assert ENV_ID is not None and ENV_ID.isdigit(), f"TEST_ENV_ID is not a number: {ENV_ID!r}"
    assert 1 <= int(ENV_ID) <= 100, f"TEST_ENV_ID out of 1..100: {ENV_ID}"


def test_default_name_matches_the_id():
    # A renamed environment may be called anything; a default name is env-<id>.
    match = re.fullmatch(r"env-(\d+)", ENV_NAME or "")
    if match is None:
        pytest.skip(f"environment renamed to {ENV_NAME!r}")
    assert match.group(1) == ENV_ID, f"TEST_ENV_NAME {ENV_NAME!r} does not match TEST_ENV_ID {ENV_ID}"


def test_the_executor_agrees():
    base = os.environ.get("EXECUTOR_URL")
    if not base:
        pytest.skip("EXECUTOR_URL is not set")
    request = urllib.request.Request(f"{base.rstrip('/')}/api/environments/{ENV_ID}")
    # With accounts on, a run whose user has one gets a token for its tests.
    token = os.environ.get("EXECUTOR_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            environment = json.load(answer)
    except urllib.error.HTTPError as error:
        if error.code == 401 and not token:
            pytest.skip("the executor asks for an account, and this run's user has none")
        raise
    assert environment["id"] == int(ENV_ID)
    assert environment["name"] == ENV_NAME, (
        f"the executor calls environment {ENV_ID} {environment['name']!r}, "
        f"but TEST_ENV_NAME is {ENV_NAME!r}"
    )
