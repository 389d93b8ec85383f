"""A benchmark's results as text (the terminal) and as JSON lines (`--json`)."""

from __future__ import annotations

import json
from typing import IO, Any

from resolver.cli.bench.run import BenchResult, Step
from resolver.cli.bench.stats import PERCENTILES, Tally

__all__ = ["interval_line", "json_records", "render", "step_line", "summary_record"]

#: A worker's CPU share at or above which the client may be the limit, not the server.
BUSY = 0.9
#: Sending this far behind the schedule (p99), the open-loop client may be the limit.
BEHIND = 0.005


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.2f} ms"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def interval_line(result: BenchResult) -> str:
    """The line of the latest interval, as the run goes."""
    start, end, tally = result.intervals[-1]
    seconds = max(end - start, 1e-9)
    c = tally.counts
    short = seconds < 0.99 * result.settings.get("interval", seconds)
    when = f"{end:6.1f} s" + (f" (the last {seconds:.2f} s)" if short else "")
    line = (
        f"bench: {when}  sent {_n(c['sent'] / seconds):>9}/s  "
        f"answered {_n(c['answered'] / seconds):>9}/s  lost {c['lost']:,}"
    )
    if c["late"]:
        line += f"  late {c['late']:,}"
    if c["checked"]:
        line += f"  wrong {c['wrong']:,}"
    if c["answered"]:
        line += (
            f"  p50 {_ms(tally.latency.percentile(50))}  p99 {_ms(tally.latency.percentile(99))}"
        )
    return line


def step_line(step: Step) -> str:
    """A ramp step, once all its queries are done."""
    c = step.tally.counts
    return (
        f"bench: step {step.index + 1}: {_n(step.rate)} q/s: sent {c['sent']:,}, answered "
        f"{c['answered']:,}, lost {100 * step.loss:.2f}%, p99 "
        f"{_ms(step.tally.latency.percentile(99))}: {_VERDICTS[step.verdict]}"
    )


_VERDICTS = {
    "ok": "ok",
    "loss": "too much loss",
    "p99": "p99 too high",
    "client": "the client fell behind (not judged)",
    "": "-",
}


def _mode(settings: dict[str, Any]) -> str:
    mode = settings["mode"]
    workers, sockets = settings["workers"], settings["sockets"]
    tries = settings["tries"]
    tail = (
        f"; {workers} worker{'s' if workers != 1 else ''}, {sockets} socket"
        f"{'s' if sockets != 1 else ''} per server and worker; timeout {settings['timeout']:g} s, "
        + ("no retries" if tries == 1 else f"{tries} tries (retries hide loss)")
    )
    if mode == "closed":
        head = f"closed loop, {settings['window']:,} queries outstanding"
    elif mode == "rate":
        head = f"open loop, {settings['rate']:,g} queries/s on a fixed schedule"
    elif mode == "ramp":
        low, high, step = settings["ramp"]
        head = (
            f"ramp, open loop from {low:,g} to {high:,g} queries/s by {step:,g}, "
            f"{settings['step_seconds']:g} s a step"
        )
    else:
        head = "replay at the log's own timing" + (
            f" x{settings['speed']:g}" if settings.get("speed", 1) != 1 else ""
        )
    if settings.get("duration"):
        head += f" for {settings['duration']:g} s"
    return head + tail


def render(result: BenchResult) -> str:
    """The summary at the end of a run."""
    total = result.total
    c = total.counts
    settings = result.settings
    open_loop = settings.get("mode") != "closed"
    sent = c["sent"]
    lines = [f"mode         {_mode(settings)}"]
    elapsed = f"{result.elapsed:.2f} s" + (" (interrupted)" if result.interrupted else "")
    lines.append(
        f"queries      {sent:,} sent in {elapsed}: {c['answered']:,} answered"
        + (f" ({100 * c['answered'] / sent:.2f}%)" if sent else "")
        + f", {c['lost']:,} lost"
        + (f" ({100 * c['lost'] / sent:.2f}%)" if sent else "")
        + f", {c['late']:,} late replies"
        + (f", {c['retried']:,} retried" if c["retried"] else "")
        + (f", {c['unexpected']:,} unexpected replies" if c["unexpected"] else "")
        + (f"; {c['send_errors']:,} could not be sent" if c["send_errors"] else "")
    )
    if c["answered"]:
        lines.append(
            f"answered     {_n(result.answered_rate)} queries/s "
            f"({c['answered']:,} in {result.last_reply:.2f} s, from the start to the last reply)"
        )
    elif sent:
        servers = ", ".join(settings.get("servers", []))
        why = (
            f"; {c['unreachable']:,} ICMP port-unreachable: is a server listening there?"
            if c["unreachable"]
            else ""
        )
        lines.append(f"answered     none: no reply to any of {sent:,} queries from {servers}{why}")
    percentiles = ", ".join(
        f"{label} {_ms(total.latency.percentile(p))}" for p, label in PERCENTILES
    )
    since = "each query's scheduled time" if open_loop else "each query's send"
    lines.append(
        f"latency      {percentiles}, max {_ms(total.latency.max if c['answered'] else None)}"
        + (f" (from {since})" if c["answered"] else "")
    )
    if c["answered"]:
        answered = c["answered"]
        mix = ", ".join(
            f"{code} {n:,} ({100 * n / answered:.1f}%)" for code, n in total.rcodes.most_common()
        )
        tc = f"; {c['truncated']:,} truncated" if c["truncated"] else ""
        lines.append(f"rcodes       {mix}{tc}")
    check = settings.get("check")
    if check:
        against = "the zone files" if check == "zone" else "the calibration pass"
        unchecked = f"; {result.unchecked:,} questions unchecked" if result.unchecked else ""
        lines.append(
            f"answers      {c['checked']:,} checked against {against}: {c['wrong']:,} wrong"
            + unchecked
        )
        for question, want, got in result.wrong:
            lines.append(f"wrong        {question}: expected {want}, got {got}")
    if len(total.servers) > 1 or any(v[2] for v in total.servers.values()):
        for server, (s, a, lost) in total.servers.items():
            lines.append(f"server       {server}: {s:,} sent, {a:,} answered, {lost:,} lost")
    if result.steps:
        lines += _ramp_table(result)
    lines += client_notes(result)
    return "\n".join(lines)


def _ramp_table(result: BenchResult) -> list[str]:
    settings = result.settings
    rows = [
        "step  target q/s   sent q/s  answered q/s   lost %     p99 ms  result",
    ]
    for step in result.steps:
        c = step.tally.counts
        p99 = step.tally.latency.percentile(99)
        rows.append(
            f"{step.index + 1:>4}  {_n(step.rate):>10}  {_n(c['sent'] / step.seconds):>9}  "
            f"{_n(c['answered'] / step.seconds):>12}  {100 * step.loss:>7.2f}  "
            f"{'-' if p99 is None else f'{p99 * 1000:.2f}':>9}  {_VERDICTS[step.verdict]}"
        )
    bound = (
        f"loss at most {100 * settings['max_loss']:g}% and p99 at most "
        f"{settings['max_p99_ms']:g} ms"
    )
    ended_by_client = result.steps[-1].verdict == "client"
    if result.capacity is not None and ended_by_client:
        rows.append(
            f"capacity     at least {_n(result.capacity)} queries/s: the highest step with "
            f"{bound}; the client could not send faster (see client below)"
        )
    elif result.capacity is not None:
        rows.append(f"capacity     {_n(result.capacity)} queries/s: the highest step with {bound}")
    else:
        rows.append(f"capacity     below the first step: no step had {bound}")
    best = max(result.steps, key=lambda s: s.tally.counts["answered"])
    rows.append(
        f"peak         {_n(best.tally.counts['answered'] / best.seconds)} answered queries/s "
        f"(step {best.index + 1})"
    )
    return rows


def client_notes(result: BenchResult) -> list[str]:
    """Lines saying whether the client, not the server, may have been the limit: in closed
    loop its CPU near a core per worker, in open loop its sending behind the schedule (its
    CPU says nothing there: it looks again, rather than sleeps, for a query due within
    20 µs); in both a full send queue or no free message id."""
    closed = result.settings.get("mode") == "closed"
    total = Tally()
    for _, _, tally in result.intervals:
        if tally.counts["sent"]:
            total.merge(tally)
    share = total.cpu / total.wall if total.wall > 0 else 0.0
    workers = result.settings.get("workers", 1)
    c = result.total.counts
    lag = result.total.lag
    lag_p99 = lag.percentile(99) or 0.0
    limits = []
    if closed and share >= BUSY:
        limits.append(f"its CPU was {100 * share:.0f}% of a core per worker")
    if not closed and lag_p99 > BEHIND:
        limits.append(f"sending fell behind the schedule (p99 {_ms(lag_p99)}, max {_ms(lag.max)})")
    if c["send_full"]:
        limits.append(f"the socket send queue was full {c['send_full']:,} times")
    if c["no_id"]:
        limits.append(f"{c['no_id']:,} queries waited for a free message id (add --sockets)")
    if limits:
        return [
            "client       the client may be the limit here, not the server: "
            + "; ".join(limits)
            + f" ({workers} worker{'s' if workers != 1 else ''}; try --workers, or a client on "
            "other cores)"
        ]
    if closed:
        return [f"client       CPU {100 * share:.0f}% of a core per worker: not the limit"]
    return [
        f"client       kept the schedule (sent behind it by p50 {_ms(lag.percentile(50))}, "
        f"p99 {_ms(lag_p99)}): not the limit"
    ]


def summary_record(result: BenchResult) -> dict[str, Any]:
    """The summary as one JSON object."""
    record: dict[str, Any] = {
        "type": "summary",
        **result.total.public(result.last_reply),
        "answered_per_s": round(result.answered_rate, 1),
        "elapsed": round(result.elapsed, 4),
        "last_reply": round(result.last_reply, 4),
        "interrupted": result.interrupted,
        "unchecked_questions": result.unchecked,
        "wrong_examples": [
            {"question": q, "expected": want, "got": got} for q, want, got in result.wrong
        ],
        "notes": result.notes + client_notes(result),
    }
    if result.steps:
        record["capacity"] = result.capacity
    return record


def interval_record(index: int, start: float, end: float, tally: Tally) -> dict[str, Any]:
    """One interval as a JSON object."""
    return {
        "type": "interval",
        "index": index,
        "start": round(start, 4),
        "end": round(end, 4),
        **tally.public(end - start),
    }


def json_records(result: BenchResult) -> list[dict[str, Any]]:
    """Every record of `--json`: settings, intervals, steps, summary."""
    records: list[dict[str, Any]] = [
        {"type": "settings", **result.settings, "machine": result.machine}
    ]
    records += [interval_record(i, *entry) for i, entry in enumerate(result.intervals)]
    records += [{"type": "step", **step.public()} for step in result.steps]
    records.append(summary_record(result))
    return records


def write_json(result: BenchResult, out: IO[str]) -> None:
    """`--json`: one record a line."""
    for record in json_records(result):
        out.write(json.dumps(record) + "\n")
