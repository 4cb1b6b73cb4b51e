"""Quick tests that always pass: the first thing to run on a new environment."""

import json
import re

import pytest


def test_arithmetic():
    assert 2 + 2 == 4
    assert 7 // 2 == 3
    assert 2**10 == 1024


def test_strings():
    assert "executor".upper() == "EXECUTOR"
    assert "a,b,c".split(",") == ["a", "b", "c"]
    assert re.fullmatch(r"env-\d+", "env-42")


def test_sorting_is_stable():
    runs = [("b", 2), ("a", 1), ("c", 2), ("d", 1)]
    assert sorted(runs, key=lambda r: r[1]) == [("a", 1), ("d", 1), ("b", 2), ("c", 2)]


def test_json_round_trip():
    run = {"id": 42, "paths": ["smoke/test_fast.py"], "status": "queued"}
    assert json.loads(json.dumps(run)) == run


@pytest.mark.parametrize(("n", "square"), [(0, 0), (3, 9), (12, 144)])
def test_square(n, square):
    assert n * n == square


class TestCollections:
    def test_set_union(self):
        assert {1, 2} | {2, 3} == {1, 2, 3}

    def test_dict_merge(self):
        assert {"a": 1} | {"b": 2} == {"a": 1, "b": 2}
