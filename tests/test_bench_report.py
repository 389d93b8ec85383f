"""`resolver bench --report`: one self-contained HTML page, opened in a real browser
(headless Chromium), its plots there and drawn."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from resolver.testing import serve_in_thread
from tests._browser import browser
from tests.zones import ZONE

TITLES = [
    "Queries per second over time",
    "Latency over time",
    "Answered per server",
    "Latency distribution",
    "Latency CDF",
    "Capacity search: answered per step",
    "Capacity search: loss and p99 per step",
    "Status mix",
]


def test_report_is_self_contained_and_its_plots_are_drawn(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"h{i}.zone.test\nwww.zone.test\n" for i in range(100)))
    report = tmp_path / "bench.html"
    with serve_in_thread(ZONE) as server:
        command = [sys.executable, "-m", "resolver", "bench", str(hosts), "-n", server.nameserver]
        command += ["--ramp", "100:300:100", "--step-duration", "0.4", "--interval", "0.1"]
        proc = subprocess.run(
            [*command, "-q", "--report", str(report)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    html = report.read_text()
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r"(?:src|href)=", html)
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}

    with browser() as page:
        page.open(report.as_uri())
        found = page.run(
            "return [...document.querySelectorAll('figure')].map(f => {"
            "  const r = f.querySelector('svg').getBoundingClientRect();"
            "  return {title: f.querySelector('h2').textContent,"
            "          svg: f.querySelector('svg title').textContent,"
            "          box: [r.left, r.top, r.right, r.bottom]}; })"
        )
        loaded = page.run("return performance.getEntriesByType('resource').length")
        shot = page.screenshot()
    assert [f["title"] for f in found] == TITLES
    assert all(f["svg"] == f["title"] for f in found)
    assert loaded == 0  # nothing fetched: no network, no other file
    for figure in found:
        left, top, right, bottom = (round(v) for v in figure["box"])
        assert right - left > 300, figure
        assert bottom - top > 60, figure
        assert bottom <= shot.height, figure  # within the screenshot
        pixels = shot.region(left, top, right, bottom)
        _, most = Counter(pixels).most_common(1)[0]
        drawn = len(pixels) - most
        assert drawn > len(pixels) // 100, figure  # more than 1% is not background
        colored = {p for p in pixels if max(p) - min(p) > 60}  # lines and bars, not greys
        assert len(colored) >= 2, figure
