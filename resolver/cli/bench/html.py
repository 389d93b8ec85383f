"""The HTML report of a benchmark (`--report FILE.html`): one self-contained page.

No script, no external font, stylesheet or image: the plots are inline SVG drawn here
(queries/s over time, latency over time, the latency histogram and CDF with percentiles
marked, answered/s per server, the status mix, a ramp's steps), then the summary, the
settings and the machine. Opens from a file with no network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from resolver.cli.bench.report import render
from resolver.cli.bench.run import BenchResult
from resolver.cli.bench.stats import Histogram

__all__ = ["Chart", "document", "hbars", "page", "preformatted"]

PALETTE = ("#1f77b4", "#2ca02c", "#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f")
_W, _H = 760, 280
_LEFT, _RIGHT, _TOP, _BOTTOM = 70, 20, 16, 46


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]
    color: str
    kind: str = "line"  # "line", "bars" (x0, x1 pairs in `spans`), "dots"
    spans: list[tuple[float, float, float]] = field(default_factory=list)  # bars: x0, x1, y


@dataclass
class Chart:
    """A plot with axes, ticks, a legend, lines or bars, and labelled vertical markers."""

    title: str
    x_label: str
    y_label: str
    log_x: bool = False
    log_y: bool = False
    y_min: float | None = None
    y_max: float | None = None
    series: list[Series] = field(default_factory=list)
    markers: list[tuple[float, str]] = field(default_factory=list)

    def line(self, label: str, points: Sequence[tuple[float, float]], kind: str = "line") -> None:
        color = PALETTE[len(self.series) % len(PALETTE)]
        self.series.append(Series(label, list(points), color, kind))

    def bars(self, label: str, spans: Sequence[tuple[float, float, float]]) -> None:
        color = PALETTE[len(self.series) % len(PALETTE)]
        self.series.append(Series(label, [], color, "bars", list(spans)))

    def _xs_ys(self) -> tuple[list[float], list[float]]:
        xs = [x for s in self.series for x, _ in s.points]
        ys = [y for s in self.series for _, y in s.points]
        for s in self.series:
            for x0, x1, y in s.spans:
                xs += [x0, x1]
                ys.append(y)
        xs += [x for x, _ in self.markers]
        if self.log_x:
            xs = [x for x in xs if x > 0]
        if self.log_y:
            ys = [y for y in ys if y > 0]
        return xs, ys

    def svg(self) -> str:
        xs, ys = self._xs_ys()
        x_lo, x_hi = _range(xs, self.log_x, None, None)
        y_lo, y_hi = _range(ys, self.log_y, self.y_min, self.y_max)
        if not self.log_y and self.y_min is None:
            y_lo = min(y_lo, 0.0)
        sx = _scale(x_lo, x_hi, _LEFT, _W - _RIGHT, self.log_x)
        sy = _scale(y_lo, y_hi, _H - _BOTTOM, _TOP, self.log_y)
        out = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" '
            f'height="{_H}" role="img" aria-label="{escape(self.title)}">',
            f"<title>{escape(self.title)}</title>",
            f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" '
            f'height="{_H - _TOP - _BOTTOM}" fill="#fbfbfb" stroke="#ccc"/>',
        ]
        for value in _ticks(y_lo, y_hi, self.log_y):
            y = sy(value)
            out.append(
                f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_W - _RIGHT}" y2="{y:.1f}" '
                f'stroke="#e4e4e4"/><text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                f'class="tick">{_label(value)}</text>'
            )
        for value in _ticks(x_lo, x_hi, self.log_x):
            x = sx(value)
            out.append(
                f'<line x1="{x:.1f}" y1="{_H - _BOTTOM}" x2="{x:.1f}" y2="{_H - _BOTTOM + 4}" '
                f'stroke="#888"/><text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle" '
                f'class="tick">{_label(value)}</text>'
            )
        out.append(
            f'<text x="{(_LEFT + _W - _RIGHT) / 2}" y="{_H - 8}" text-anchor="middle" '
            f'class="axis">{escape(self.x_label)}</text>'
            f'<text x="14" y="{(_TOP + _H - _BOTTOM) / 2}" text-anchor="middle" class="axis" '
            f'transform="rotate(-90 14 {(_TOP + _H - _BOTTOM) / 2})">{escape(self.y_label)}</text>'
        )
        base = sy(y_lo if self.log_y else max(y_lo, 0.0))
        for s in self.series:
            if s.kind == "bars":
                for x0, x1, y in s.spans:
                    if y <= 0 or (self.log_x and x0 <= 0):
                        continue
                    left, right, top = sx(x0), sx(x1), sy(y)
                    out.append(
                        f'<rect x="{left:.1f}" y="{top:.1f}" width="{max(right - left, 1):.1f}" '
                        f'height="{max(base - top, 0.5):.1f}" fill="{s.color}"/>'
                    )
                continue
            points = [
                (x, y) for x, y in s.points if _shown(x, self.log_x) and _shown(y, self.log_y)
            ]
            if not points:
                continue
            if s.kind == "dots" or len(points) == 1:
                out += [
                    f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3.5" fill="{s.color}"/>'
                    for x, y in points
                ]
                if s.kind == "dots":
                    continue
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2"/>'
            )
        for value, text in self.markers:
            if not _shown(value, self.log_x):
                continue
            x = sx(value)
            out.append(
                f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_H - _BOTTOM}" stroke="#444" '
                f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{_TOP + 12}" class="marker">'
                f"{escape(text)}</text>"
            )
        legend_x = _LEFT + 8
        for s in self.series:
            out.append(
                f'<rect x="{legend_x}" y="{_TOP + 6}" width="10" height="10" fill="{s.color}"/>'
                f'<text x="{legend_x + 14}" y="{_TOP + 15}" class="legend">{escape(s.label)}</text>'
            )
            legend_x += 24 + 7 * len(s.label)
        out.append("</svg>")
        return "".join(out)


def _shown(value: float, log: bool) -> bool:
    return math.isfinite(value) and (value > 0 or not log)


def _range(
    values: list[float], log: bool, low: float | None, high: float | None
) -> tuple[float, float]:
    lo = low if low is not None else min(values, default=0.0)
    hi = high if high is not None else max(values, default=1.0)
    if log:
        lo = lo if lo > 0 else 1e-3
        hi = hi if hi > lo else lo * 10
        return 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi) + 1e-12)
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi + (hi - lo) * 0.05 if high is None else hi


def _scale(lo: float, hi: float, a: float, b: float, log: bool) -> Any:
    if log:
        llo, lhi = math.log10(lo), math.log10(hi)
        return lambda v: a + (math.log10(max(v, lo)) - llo) / (lhi - llo) * (b - a)
    return lambda v: a + (v - lo) / (hi - lo) * (b - a)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(round(math.log10(lo)), round(math.log10(hi)) + 1)]
    raw = (hi - lo) / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(lo / step) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    return f"{value:.3g}"


def _timeline(result: BenchResult) -> list[str]:
    rates = Chart("Queries per second over time", "seconds since the start", "queries/s")
    latency = Chart("Latency over time", "seconds since the start", "latency, ms (log)", log_y=True)
    per_server = Chart("Answered per server", "seconds since the start", "answered/s")
    sent, answered, lost, late = [], [], [], []
    p50, p99, worst = [], [], []
    servers: dict[str, list[tuple[float, float]]] = {}
    interval = result.settings.get("interval", 1.0)
    for start, end, tally in result.intervals:
        seconds = end - start
        if seconds < interval / 2:
            continue  # the short last one (the wait for the last replies): rates would spike
        c = tally.counts
        sent.append((end, c["sent"] / seconds))
        answered.append((end, c["answered"] / seconds))
        lost.append((end, c["lost"] / seconds))
        late.append((end, c["late"] / seconds))
        if c["answered"]:
            p50.append((end, 1000 * (tally.latency.percentile(50) or 0)))
            p99.append((end, 1000 * (tally.latency.percentile(99) or 0)))
            worst.append((end, 1000 * tally.latency.max))
        for server, (_, a, _) in tally.servers.items():
            servers.setdefault(server, []).append((end, a / seconds))
    rates.line("sent/s", sent)
    rates.line("answered/s", answered)
    rates.line("lost/s", lost)
    if any(y for _, y in late):
        rates.line("late replies/s", late)
    latency.line("p50", p50)
    latency.line("p99", p99)
    latency.line("max", worst)
    for server, points in servers.items():
        per_server.line(server, points)
    return [_figure(rates), _figure(latency), _figure(per_server)]


def _distribution(hist: Histogram) -> list[str]:
    histogram = Chart(
        "Latency distribution", "latency, ms (log)", "share of answers, %", log_x=True
    )
    cdf = Chart(
        "Latency CDF",
        "latency, ms (log)",
        "answers at or below, %",
        log_x=True,
        y_min=0.0,
        y_max=100.0,
    )
    total = hist.total
    if total:
        # Display buckets: 10 a decade, from the fine ones.
        coarse: dict[int, int] = {}
        for lo, hi, n in hist.bins():
            key = math.floor(math.log10(max((lo + hi) / 2, 1e-4)) * 10)
            coarse[key] = coarse.get(key, 0) + n
        histogram.bars(
            "answers",
            [
                (10 ** (k / 10), 10 ** ((k + 1) / 10), 100 * n / total)
                for k, n in sorted(coarse.items())
            ],
        )
        seen = 0
        points = []
        for _, hi, n in hist.bins():
            seen += n
            points.append((hi, 100 * seen / total))
        cdf.line("answers", points)
        for p, label in ((50, "p50"), (95, "p95"), (99, "p99"), (99.9, "p99.9")):
            value = hist.percentile(p)
            if value is not None:
                cdf.markers.append((1000 * value, label))
                histogram.markers.append((1000 * value, label))
    return [_figure(histogram), _figure(cdf)]


def hbars(
    title: str, rows: Sequence[tuple[str, float]], unit: str, reference: float | None = None
) -> str:
    """A figure of labelled horizontal bars, each with its value; `reference` draws a
    dashed line at that value (a ratio's 1, say)."""
    label_w, bar_h, gap = 190, 18, 8
    height = _TOP + len(rows) * (bar_h + gap) + 30
    top = max([v for _, v in rows] + [reference or 0.0, 1e-9])
    scale = (_W - label_w - 110) / top
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {height}" width="{_W}" '
        f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for i, (label, value) in enumerate(rows):
        y = _TOP + i * (bar_h + gap)
        color = PALETTE[i % len(PALETTE)]
        w = max(value * scale, 1.0)
        out.append(
            f'<text x="{label_w - 8}" y="{y + 13}" text-anchor="end" class="legend">'
            f'{escape(label)}</text><rect x="{label_w}" y="{y}" width="{w:.1f}" '
            f'height="{bar_h}" fill="{color}"/><text x="{label_w + w + 6:.1f}" y="{y + 13}" '
            f'class="legend">{escape(_label(value))} {escape(unit)}</text>'
        )
    if reference is not None:
        x = label_w + reference * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{_TOP - 6}" x2="{x:.1f}" y2="{height - 24}" stroke="#444" '
            f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{height - 10}" class="marker">'
            f"{escape(_label(reference))}</text>"
        )
    if not rows:
        out.append(f'<text x="{label_w}" y="{_TOP + 13}" class="legend">nothing to show</text>')
    out.append("</svg>")
    return _wrap(title, "".join(out))


def _status_mix(result: BenchResult) -> str:
    c = result.total.counts
    rows = [(code, float(n)) for code, n in result.total.rcodes.most_common()]
    rows += [("lost", c["lost"]), ("wrong", c["wrong"]), ("late replies", c["late"])]
    return hbars("Status mix", [(label, float(n)) for label, n in rows if n], "queries")


def _ramp(result: BenchResult) -> list[str]:
    if not result.steps:
        return []
    rates = Chart("Capacity search: answered per step", "target queries/s", "queries/s")
    quality = Chart("Capacity search: loss and p99 per step", "target queries/s", "% lost / ms")
    rates.line("target", [(s.rate, s.rate) for s in result.steps])
    rates.line(
        "answered/s", [(s.rate, s.tally.counts["answered"] / s.seconds) for s in result.steps]
    )
    quality.line("lost, %", [(s.rate, 100 * s.loss) for s in result.steps])
    quality.line(
        "p99, ms",
        [(s.rate, 1000 * (s.tally.latency.percentile(99) or 0)) for s in result.steps],
    )
    if result.capacity is not None:
        rates.markers.append((result.capacity, f"capacity {result.capacity:,.0f}"))
        quality.markers.append((result.capacity, "capacity"))
    return [_figure(rates), _figure(quality)]


def _figure(chart: Chart) -> str:
    return _wrap(chart.title, chart.svg())


def _wrap(title: str, svg: str) -> str:
    return f"<figure><h2>{escape(title)}</h2>{svg}</figure>"


def _table(title: str, rows: dict[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(_value(v))}</td></tr>"
        for k, v in rows.items()
        if v not in (None, [], {})
    )
    return f"<section><h2>{escape(title)}</h2><table>{body}</table></section>"


def _value(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return str(v)


_STYLE = """
body{font-family:sans-serif;margin:24px auto;max-width:800px;color:#222}
h1{font-size:22px}h2{font-size:16px;margin:18px 0 6px}
figure{margin:0 0 12px}svg{display:block;max-width:100%;height:auto}
.tick{font-size:11px;fill:#555}.axis{font-size:12px;fill:#333}
.legend{font-size:12px;fill:#222}.marker{font-size:11px;fill:#222}
pre{background:#f6f6f6;padding:10px;font-size:12px;overflow-x:auto}
table{border-collapse:collapse;font-size:13px}th,td{text-align:left;padding:2px 10px 2px 0}
th{font-weight:600;color:#444}
"""


def document(title: str, parts: Sequence[str], subtitle: str = "") -> str:
    """A self-contained page: `title`, then `parts` (figures, sections) as they are."""
    head = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(subtitle)}</p>" if subtitle else "",
    ]
    return "\n".join([*head, *parts, "</body></html>"]) + "\n"


def preformatted(title: str, text: str) -> str:
    """A section of plain text (a summary, a Markdown table)."""
    return f"<section><h2>{escape(title)}</h2><pre>{escape(text)}</pre></section>"


def page(result: BenchResult) -> str:
    """The whole report of a benchmark as one HTML document."""
    servers = ", ".join(result.settings.get("servers", []))
    parts = [
        *_timeline(result),
        *_distribution(result.total.latency),
        *_ramp(result),
        _status_mix(result),
        preformatted("Summary", render(result)),
        _table("Settings", result.settings),
        _table("Machine (client)", result.machine),
    ]
    return document(f"resolver bench: {servers}", parts, result.machine.get("date", ""))
