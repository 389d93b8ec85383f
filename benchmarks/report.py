"""The throughput benchmark's Markdown report: medians, same-run ratios, every run."""

from __future__ import annotations

import argparse
import datetime
import shlex
import statistics
import sys
from collections.abc import Sequence

from benchlib import FORWARD_ORIGIN, KINDS, REVERSE_ORIGIN
from clients import ADNS_CHUNK, ADNS_PARALLEL, Client, Measurement, Setup


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _fmt_latency(values: list[list[float]], index: int) -> str:
    picked = [v[index] for v in values if len(v) > index]
    return f"{_median(picked):.2f}" if picked else "-"


def medians_table(clients: list[Client], runs: list[Measurement]) -> list[str]:
    rows = [
        "| client | names | names/s | CPU s | CPU µs/name | peak RSS MB "
        "| p50 ms | p95 ms | p99 ms | correct | others' load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for client in clients:
        ok = [m for m in runs if m.client == client.name and m.error is None and m.names]
        failed = [m for m in runs if m.client == client.name and m.error is not None]
        if not ok:
            reason = failed[0].error if failed else "not run"
            rows.append(f"| {client.name} | failed: {reason} |" + " |" * 9)
            continue
        lat = [m.latency_ms for m in ok]
        name = client.name + (f" ({len(failed)} failed)" if failed else "")
        correct = _median([m.correct / m.names * 100 for m in ok])
        rows.append(
            f"| {name} | {ok[0].names:,} | {_median([m.rate for m in ok]):,.0f} "
            f"| {_median([m.cpu for m in ok]):.2f} "
            f"| {_median([m.cpu_us_per_name for m in ok]):.1f} "
            f"| {_median([m.maxrss_kb / 1024 for m in ok]):.1f} "
            f"| {_fmt_latency(lat, 0)} | {_fmt_latency(lat, 1)} | {_fmt_latency(lat, 2)} "
            f"| {correct:.2f}% | {_median([m.other_load for m in ok]):.2f} |"
        )
    return rows


def ratios_table(clients: list[Client], runs: list[Measurement]) -> list[str]:
    """Per round, resolve-cli's rate / the peer's, and the peer's CPU per name / resolve-cli's."""
    refs = [c for c in clients if c.is_reference]
    peers = [c for c in clients if c not in refs[:1]]
    if not refs or not peers:
        return []
    by = {(m.client, m.round): m for m in runs if m.error is None and m.names}
    head = "| peer |" + "".join(f" {r.name} speed x | {r.name} CPU/name x |" for r in refs)
    rows = [head, "| --- |" + " ---: | ---: |" * len(refs)]
    for peer in peers:
        cells = ""
        for ref in refs:
            speed, cpu = [], []
            for (name, round_), m in by.items():
                own = by.get((ref.name, round_))
                if name == peer.name and own is not None and peer is not ref:
                    speed.append(own.rate / m.rate)
                    if own.cpu_us_per_name:
                        cpu.append(m.cpu_us_per_name / own.cpu_us_per_name)
            cells += f" {_median(speed):.2f} |" if speed else " - |"
            cells += f" {_median(cpu):.2f} |" if cpu else " - |"
        rows.append(f"| {peer.name} |{cells}")
    return rows


def rounds_table(runs: list[Measurement]) -> list[str]:
    rows = [
        "| round | client | wall s | names/s | CPU s | RSS MB | correct | notes |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in runs:
        notes = "; ".join(f"{k}: {v}" for k, v in m.extra.items() if v)
        if m.error:
            notes = f"FAILED: {m.error}; {notes}"
        pct = f"{m.correct / m.names * 100:.2f}%" if m.names else "-"
        rows.append(
            f"| {m.round} | {m.client} | {m.wall:.2f} | {m.rate:,.0f} | {m.cpu:.2f} "
            f"| {m.maxrss_kb / 1024:.1f} | {pct} | {notes.replace('|', '/')} |"
        )
    return rows


def report(
    args: argparse.Namespace,
    clients: list[Client],
    runs: list[Measurement],
    setup: Setup,
    notes: list[str],
    info: dict[str, str],
) -> str:
    counts = {kind: KINDS.count(kind) * 100 // len(KINDS) for kind in dict.fromkeys(KINDS)}
    mix = ", ".join(f"{kind} {pct}%" for kind, pct in counts.items())
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    medians = medians_table(clients, runs)
    pinning = (
        "pinned to CPU 0 (`taskset -c 0`); clients pinned to CPU 1 (`taskset -c 1`)"
        if setup.pin
        else "not pinned (fewer than 2 CPUs)"
    )
    ratios = ratios_table(clients, runs)
    lines = [
        "# Throughput benchmark results",
        "",
        f"- Date: {date}; command: `{' '.join(['benchmarks/throughput.py', *sys.argv[1:]])}`",
        f"- Machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}, "
        f"Python {info['python']}",
        f"- Server: {info['knot']}, 1 UDP worker, {pinning}",
        f"- Software: resolver {info['resolver']}; {info['packages']}; {info['adns']}",
        f"- Workload: {len(setup.lines):,} unique names ({mix}; the A2 kind has two addresses),"
        f" {FORWARD_ORIGIN} and {REVERSE_ORIGIN}; every client asks each once; "
        f"dnspython asks the first {setup.dnspython_names:,}",
        f"- {args.rounds} round(s), clients interleaved; figures are medians over the rounds",
        "",
        *medians,
        "",
    ]
    if ratios:
        lines += [
            "Same-run ratios, median over rounds (above 1: `resolver resolve` is faster /"
            " spends less CPU per name than the peer):",
            "",
            *ratios,
            "",
        ]
    lines += ["Notes:", "", *(f"- {n}" for n in notes), "", "## Every run", "", *rounds_table(runs)]
    lines += ["", "## Commands", ""]
    for client in clients:
        command = shlex.join([*setup.pin, *client.command(setup)])
        lines.append(f"- {client.name}: `{command.replace(str(setup.tmp), '$TMP')}`")
    return "\n".join(lines) + "\n"


NOTES = [
    "names/s: names ÷ the client process's wall time, start-up included (Python imports,"
    " reading the list); CPU s: user+sys of the client process(es) from wait4(); peak RSS:"
    " GNU time's %M (the client forked from a small process, see `launcher`)",
    "Latency: resolver's `elapsed_ms` (resolve-cli), `Result.elapsed` (library), time"
    " around each awaited query (aiodns, dnspython), dnsperf's per-query latency (-v);"
    " adnshost reports none",
    "correct: answers equal to the zone's (status, sorted addresses or PTR names, CNAME"
    " chain); dnsperf sees rcodes only, so for it correct means the right rcode. resolve-cli"
    " is checked by this script after it exits (not in its CPU); library, aiodns and"
    " dnspython check in-process (a CRC per answer, in their CPU)",
    "PTR: the resolver clients get IPv4 literals and build the in-addr.arpa names"
    " themselves; the peers get the in-addr.arpa names; the same questions go on the wire",
    f"adnshost: {ADNS_CHUNK} names per process, {ADNS_PARALLEL} processes at a time; its CPU"
    " includes this script starting and reaping them; its peak RSS is one process's",
    "dnsperf keeps 100 queries in flight (the others 1000); it is the server's ceiling,"
    " not a resolver",
    "python-floor is not a resolver either: a bare Python loop that sends the prebuilt"
    " queries and reads only each reply's id and rcode (no event loop, no decoding, no"
    " output), so correct means the right rcode; about the least a Python client can"
    " spend per name",
    "aiodns's RSS grows with the list: c-ares keeps every answer in its query cache for"
    " its TTL (3600 s in this zone), and pycares 5 offers no switch to turn that cache off",
    "others' load: CPUs' worth of time that anything else on the machine (not this script,"
    " its clients or knotd) used while the client ran, from /proc/stat; near 0 on a quiet"
    " machine, and a run where it is high is suspect (wall time and CPU per name both"
    " suffer). Per run (below): other_cpu_s is the same in seconds, server_cpu_s knotd's"
    " CPU, server_drops the queries the kernel dropped at knotd's sockets",
]


def html_page(text: str, runs: list[Measurement]) -> str:
    """The report as a self-contained page: names/s and CPU per name per client (medians
    over the rounds), the same-run speed ratios of the first resolver row, and the text."""
    from resolver.cli.bench.html import document, hbars, preformatted

    ok = [m for m in runs if m.error is None and m.names]
    names = list(dict.fromkeys(m.client for m in ok))
    rates = [(n, statistics.median([m.rate for m in ok if m.client == n])) for n in names]
    cpu = [(n, statistics.median([m.cpu_us_per_name for m in ok if m.client == n])) for n in names]
    parts = [
        hbars("Names per second, per client (median over rounds)", rates, "names/s"),
        hbars("CPU per name, per client (median over rounds)", cpu, "µs"),
    ]
    ref = next((n for n in names if n.startswith("resolve-cli")), None)
    if ref is not None:
        by = {(m.client, m.round): m for m in ok}
        ratios = []
        for peer in names:
            speeds = [
                own.rate / m.rate
                for (name, round_), m in by.items()
                if name == peer and (own := by.get((ref, round_))) is not None and m.rate
            ]
            if peer != ref and speeds:
                ratios.append((peer, statistics.median(speeds)))
        parts.append(
            hbars(f"{ref}: same-run speed ratio to each peer (above 1: faster)", ratios, "x", 1.0)
        )
    parts.append(preformatted("Report", text))
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return document("Throughput benchmark", parts, date)
