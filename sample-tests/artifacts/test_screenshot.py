"""Leaves files in TEST_ARTIFACTS_DIR, as a UI test leaves screenshots: the
run page lists them, shows the image and links it to its test."""

import base64
import json
import os
from pathlib import Path

# A 1x1 red PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def artifacts() -> Path:
    # Outside the executor, a local directory stands in.
    return Path(os.environ.get("TEST_ARTIFACTS_DIR", "artifacts-local"))


def test_screenshot_is_kept():
    shots = artifacts() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "home.png").write_bytes(PIXEL)
    print("[[ATTACHMENT|screenshots/home.png]]")


def test_report_is_kept():
    artifacts().mkdir(parents=True, exist_ok=True)
    (artifacts() / "report.json").write_text(json.dumps({"checked": 3, "ok": True}))
