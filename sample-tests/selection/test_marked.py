"""Tests with markers and telling names: try a run with keyword
``checkout and not discount`` or markers ``smoke``."""

import pytest


@pytest.mark.smoke
def test_login_page():
    assert "login".upper() == "LOGIN"


@pytest.mark.smoke
@pytest.mark.checkout
def test_checkout_total():
    assert sum([1, 2]) == 3


@pytest.mark.checkout
def test_checkout_discount():
    assert round(10 * 0.9, 2) == 9.0


def test_logout():
    assert not []
