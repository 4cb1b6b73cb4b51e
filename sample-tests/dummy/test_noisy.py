"""Prints a lot: 5,000 lines live into the log, a few in colour, plus
captured output on stdout and stderr that pytest reports at the end."""

import sys

import pytest

LINES = 5000
GREEN = "\x1b[32m"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"


def test_prints_five_thousand_lines(capsys):
    with capsys.disabled():
        sys.stdout.write("\n")
        for i in range(1, LINES + 1):
            if i % 500 == 0:
                line = f"{GREEN}noisy line {i:05d}/{LINES}: milestone{RESET}"
            else:
                line = f"noisy line {i:05d}/{LINES}: the quick brown fox jumps over the lazy dog"
            sys.stdout.write(line + "\n")
            if i % 100 == 0:
                sys.stdout.flush()
        sys.stdout.flush()


def test_captured_output_on_both_streams():
    for i in range(1, 51):
        print(f"captured stdout line {i}")
        print(f"{YELLOW}captured stderr line {i}{RESET}", file=sys.stderr)
    assert True


@pytest.mark.parametrize("width", [80, 200, 1000])
def test_long_lines(width, capsys):
    with capsys.disabled():
        print(f"\n[{width}] " + "x" * width, flush=True)
