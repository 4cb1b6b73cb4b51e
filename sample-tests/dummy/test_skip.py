"""Every way a test can be skipped or expected to fail."""

import sys

import pytest


@pytest.mark.skip(reason="skipped unconditionally, on purpose")
def test_skipped():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.version_info >= (3,), reason="skipped on Python 3, on purpose")
def test_skipped_on_python_3():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.version_info < (3,), reason="only skipped on Python 2")
def test_runs_on_python_3():
    assert sys.version_info >= (3,)


def test_skips_itself_at_run_time():
    pytest.skip("decided inside the test, on purpose")


@pytest.mark.xfail(raises=ZeroDivisionError, reason="a known bug, on purpose")
def test_expected_to_fail():
    assert 1 / 0
