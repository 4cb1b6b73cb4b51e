"""Leaves files in TEST_ARTIFACTS_DIR, as a UI test leaves screenshots: the
run page lists them, shows the image and links it to its test."""

import json
import os
import struct
import zlib
from pathlib import Path


def artifacts() -> Path:
    # Outside the executor, a local directory stands in.
    return Path(os.environ.get("TEST_ARTIFACTS_DIR", "artifacts-local"))


def png(width: int, height: int) -> bytes:
    """A PNG of horizontal bands, written without any imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    bands = [(46, 125, 50), (21, 101, 192), (249, 168, 37)]
    rows = b"".join(
        b"\x00" + bytes(bands[y * len(bands) // height]) * width for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_screenshot_is_kept():
    shots = artifacts() / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "home.png").write_bytes(png(160, 90))
    print("[[ATTACHMENT|screenshots/home.png]]")


def test_report_is_kept():
    artifacts().mkdir(parents=True, exist_ok=True)
    (artifacts() / "report.json").write_text(json.dumps({"checked": 3, "ok": True}))
