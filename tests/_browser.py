"""A real browser for tests: headless Chromium driven through chromedriver's WebDriver
protocol (plain HTTP on loopback, no Selenium), and a PNG reader for its screenshots.

`browser()` skips the test (or fails it under RESOLVER_REQUIRE_SERVERS) when Debian's
`chromium` and `chromium-driver` are not installed (`scripts/install --with-server`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import struct
import subprocess
import time
import urllib.request
import zlib
from collections.abc import Iterator
from typing import Any

from resolver.testing.knot import free_port
from tests._env import skip_or_fail

__all__ = ["Browser", "Image", "browser", "read_png"]

_CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


class Browser:
    """One WebDriver session."""

    def __init__(self, base: str, session: str) -> None:
        self.base, self.session = base, session

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/session/{self.session}{path}", data=data, method=method
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:  # loopback only
            return json.loads(response.read())["value"]

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def run(self, script: str) -> Any:
        """Evaluate `script` (a function body with `return`) in the page."""
        return self._call("POST", "/execute/sync", {"script": script, "args": []})

    def screenshot(self) -> Image:
        return read_png(base64.b64decode(self._call("GET", "/screenshot")))


@contextlib.contextmanager
def browser(width: int = 900, height: int = 3200) -> Iterator[Browser]:
    """A headless Chromium with a `width` x `height` window."""
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    binary = next((found for name in _CHROMIUM if (found := shutil.which(name))), None)
    if not shutil.which(driver) or binary is None:
        skip_or_fail("needs Chromium and chromedriver: apt-get install chromium chromium-driver")
    port = free_port()
    proc = subprocess.Popen(
        [driver, f"--port={port}", "--allowed-ips=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        session = _new_session(base, binary, width, height)
        try:
            yield Browser(base, session)
        finally:
            with contextlib.suppress(OSError):
                request = urllib.request.Request(f"{base}/session/{session}", method="DELETE")
                urllib.request.urlopen(request, timeout=30).close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _new_session(base: str, binary: str, width: int, height: int) -> str:
    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ]
    body = {
        "capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": binary, "args": args}}}
    }
    deadline = time.monotonic() + 20
    while True:
        try:
            request = urllib.request.Request(
                f"{base}/session", data=json.dumps(body).encode(), method="POST"
            )
            request.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(request, timeout=60) as response:
                value = json.loads(response.read())["value"]
            return str(value["sessionId"])
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # chromedriver is still starting


class Image:
    """Decoded pixels: `pixel(x, y)` is an (r, g, b) tuple."""

    def __init__(self, width: int, height: int, channels: int, rows: list[bytes]) -> None:
        self.width, self.height, self.channels, self.rows = width, height, channels, rows

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row, at = self.rows[y], x * self.channels
        return row[at], row[at + 1], row[at + 2]

    def region(self, left: int, top: int, right: int, bottom: int) -> list[tuple[int, int, int]]:
        """The pixels of a rectangle (clipped to the image)."""
        return [
            self.pixel(x, y)
            for y in range(max(0, top), min(self.height, bottom))
            for x in range(max(0, left), min(self.width, right))
        ]


def read_png(data: bytes) -> Image:
    """An 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's screenshots are)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG")
    at, idat = 8, []
    width = height = channels = 0
    while at < len(data):
        length, kind = struct.unpack_from("!I4s", data, at)
        chunk = data[at + 8 : at + 8 + length]
        at += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack("!IIBBBBB", chunk)
            if depth != 8 or color not in (2, 6) or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, color type {color}")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytes] = []
    prior = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = prior[i]
            corner = prior[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + guess) & 0xFF
        rows.append(bytes(line))
        prior = line
    return Image(width, height, channels, rows)
