"""About 5 seconds in all, printing progress live every second.

The progress goes straight to the terminal (the executor's log), not to
pytest's capture, so it shows while the run is going.
"""

import time

import pytest

STEPS = 5


@pytest.mark.slow
@pytest.mark.parametrize("step", range(1, STEPS + 1))
def test_slow_step(step, capsys):
    started = time.monotonic()
    with capsys.disabled():
        print(f"\n[slow] step {step}/{STEPS}: working for a second...", flush=True)
    time.sleep(1)
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"[slow] step {step}/{STEPS}: done", flush=True)
    assert elapsed >= 1
