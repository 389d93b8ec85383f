"""`resolver bench`: which queries go out, when, and what is counted; real worker processes
sending real DNS to the loopback test server (in a thread) and to Knot.

Correctness only: counts, the queries the server received, schedules kept. Times appear
only as bounds that a slow machine cannot break (a delayed reply is not faster than its
delay; a closed loop of one cannot send more than one query per reply).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resolver.cli.bench import Bench, BenchConfig, BenchResult
from resolver.cli.bench.expect import outcome, read_zones
from resolver.cli.bench.stats import Histogram, bucket, bucket_bounds
from resolver.cli.bench.workload import read_workload
from resolver.testing import Fault, LoopbackDNSServer, serve_in_thread, to_zone_file
from resolver.testing.knot import KnotServer
from tests._env import require_knot
from tests.zones import ORIGIN, ZONE

A, AAAA, PTR = 1, 28, 12


def run(config: BenchConfig) -> BenchResult:
    return asyncio.run(Bench(config).run())


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def hosts(tmp_path: Path, names: list[str], name: str = "hosts.txt") -> str:
    path = tmp_path / name
    path.write_text("".join(f"{n}\n" for n in names))
    return str(path)


@pytest.fixture
def server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(ZONE) as running:
        yield running


def asked(server: LoopbackDNSServer) -> Counter[tuple[str, int]]:
    return Counter((q.name.lower(), q.type) for q in server.queries)


def test_closed_loop_sends_every_line_once_and_counts_every_reply(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    names = [f"h{i}.zone.test" for i in range(150)] + ["www.zone.test", "192.0.2.1"]
    config = BenchConfig([server.nameserver], [hosts(tmp_path, names)], types=[A, AAAA])
    result = run(config)
    c = result.total.counts
    assert c["sent"] == c["answered"] == 150 * 2 + 2 + 1
    assert c["lost"] == c["late"] == c["unexpected"] == c["retried"] == 0
    assert result.total.rcodes == {"NXDOMAIN": 300, "NOERROR": 3}
    want = Counter({(n, t): 1 for n in names[:-1] for t in (A, AAAA)})
    want["1.2.0.192.in-addr.arpa", PTR] = 1
    assert asked(server) == want
    assert sum(t.counts["sent"] for _, _, t in result.intervals) == c["sent"]
    assert result.total.latency.total == c["answered"]
    assert result.total.servers == {server.nameserver: [303, 303, 0]}


def test_workers_share_the_list_without_overlap(tmp_path: Path, server: LoopbackDNSServer) -> None:
    names = [f"h{i}.zone.test" for i in range(301)]
    config = BenchConfig([server.nameserver], [hosts(tmp_path, names)], workers=3, window=30)
    result = run(config)
    assert result.settings["workers"] == 3
    assert result.total.counts["sent"] == result.total.counts["answered"] == 301
    assert asked(server) == Counter({(n, A): 1 for n in names})
    assert result.total.cpu > 0
    assert result.total.wall > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_duration_asks_the_list_again_from_the_top(
    tmp_path: Path, server: LoopbackDNSServer, workers: int
) -> None:
    """Open loop for 0.5 s at 200/s: 100 queries, the list of 20 five times, by one worker
    or by two keeping one schedule between them."""
    names = [f"h{i}.zone.test" for i in range(20)]
    path = hosts(tmp_path, names)
    config = BenchConfig([server.nameserver], [path], rate=200, duration=0.5, workers=workers)
    result = run(config)
    assert result.total.counts["sent"] == 100  # the schedule's count: 0.5 s at 200/s
    assert asked(server) == Counter({(n, A): 5 for n in names})
    if workers == 1:
        assert [q.name for q in server.queries[:20]] == names


def test_open_loop_keeps_its_schedule_while_the_server_stalls(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    """Every reply is held back 0.4 s: the open loop still sends all it scheduled, and
    its latencies count from the scheduled time; a closed loop of one stalls with it."""
    names = [f"h{i}.zone.test" for i in range(100)]
    server.set_fault(None, Fault.DELAY, delay=0.4)
    paced = run(BenchConfig([server.nameserver], [hosts(tmp_path, names)], rate=100, duration=1))
    c = paced.total.counts
    assert c["sent"] == c["answered"] == 100
    assert len(server.queries) == 100
    assert (paced.total.latency.percentile(1) or 0) >= 0.39  # none faster than the stall
    server.queries.clear()
    closed = run(BenchConfig([server.nameserver], [hosts(tmp_path, names)], window=1, duration=1))
    assert 1 <= closed.total.counts["sent"] <= 3 < c["sent"]  # one per 0.4 s reply
    assert len(server.queries) == closed.total.counts["sent"]


def test_lost_and_late_replies_without_retries(tmp_path: Path, server: LoopbackDNSServer) -> None:
    """No retries by default: a dropped query is lost once; a reply after the timeout is
    late (and its query lost), not an answer."""
    names = [f"h{i}.zone.test" for i in range(30)]
    server.set_fault("h1.zone.test", Fault.DROP)
    server.set_fault("h2.zone.test", Fault.DELAY, delay=0.3)
    server.set_fault("h3.zone.test", Fault.WRONG_QUESTION)
    result = run(BenchConfig([server.nameserver], [hosts(tmp_path, names)], timeout=0.2))
    c = result.total.counts
    assert (c["sent"], c["answered"], c["lost"], c["late"]) == (30, 27, 3, 1)
    assert c["unexpected"] == 1  # the reply to another question
    assert c["retried"] == 0
    assert asked(server) == Counter({(n, A): 1 for n in names})
    assert result.total.servers[server.nameserver] == [30, 27, 3]


def test_retries_when_asked_and_every_query_ends_once(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    names = [f"h{i}.zone.test" for i in range(40)]
    server.set_fault("h5.zone.test", Fault.DROP)
    server.set_fault("h6.zone.test", Fault.DROP, times=1)
    config = BenchConfig([server.nameserver], [hosts(tmp_path, names)], timeout=0.2, tries=3)
    result = run(config)
    c = result.total.counts
    assert (c["sent"], c["answered"], c["lost"], c["retried"]) == (40, 39, 1, 3)
    assert asked(server)["h5.zone.test", A] == 3
    assert asked(server)["h6.zone.test", A] == 2


@pytest.mark.sandbox
def test_sends_that_fail_are_counted_and_not_sent(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    """One datagram in ten is refused on the way out (EPERM): those queries are counted
    as send errors, not as sent or lost, and the bench goes on."""
    from tests.test_faults import failing_sends

    path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(100)])
    with failing_sends(server.port, every=10):
        result = run(BenchConfig([server.nameserver], [path], window=10))
    c = result.total.counts
    assert (c["send_errors"], c["sent"], c["answered"], c["lost"]) == (10, 90, 90, 0)
    assert len(server.queries) == 90


def test_a_dead_server_answers_nothing_and_exits_9(tmp_path: Path) -> None:
    from tests.test_cli import closed_port

    path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(20)])
    proc = cli(path, "-n", closed_port(), "--timeout", "0.2", "-q")
    assert proc.returncode == 9, proc.stderr
    assert "answered     none: no reply to any of 20 queries" in proc.stdout
    assert "no nameserver answered" in proc.stderr


def test_an_interrupt_stops_the_sending_and_the_summary_says_so(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(50)])
    command = [sys.executable, "-m", "resolver", "bench", path, "-n", server.nameserver]
    command += ["--qps", "200", "--duration", "60", "--interval", "0.1"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    while "answered" not in proc.stderr.readline():  # the first interval is reported
        assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "(interrupted)" in out
    sent = int(out.split("queries      ", 1)[1].split()[0].replace(",", ""))
    assert 0 < sent < 200 * 60
    assert len(server.queries) == sent


def test_answers_checked_against_the_zone_file(tmp_path: Path, server: LoopbackDNSServer) -> None:
    """Every name and type of the test zone, checked against its zone file: right
    answers pass; a SERVFAIL or a changed address is wrong, a dropped query is lost."""
    zone = tmp_path / "zone.db"
    zone.write_text(to_zone_file(ZONE, ORIGIN))
    lines = [f"{name} {rtype}" for name, node in ZONE.items() for rtype in node]
    lines += ["missing.zone.test A", "v6.zone.test A", "alias2.zone.test A", "zone.test TXT"]
    lines += ["dangling.zone.test A", "www.zone.test MX", "other.example A"]
    path = hosts(tmp_path, lines)
    right = run(BenchConfig([server.nameserver], [path], zones=[str(zone)]))
    c = right.total.counts
    assert c["answered"] == len(lines)
    assert c["wrong"] == 0, right.wrong
    assert right.unchecked == 3  # other.example and the two reverse names: not in the file
    assert c["checked"] == len(lines) - 3
    server.set_fault("www.zone.test", Fault.SERVFAIL)
    server.set_fault("v4.zone.test", Fault.DROP)
    wrong = run(BenchConfig([server.nameserver], [path], zones=[str(zone)], timeout=0.2))
    c = wrong.total.counts
    assert c["lost"] == 1
    assert c["wrong"] == 3  # www A, AAAA and MX
    assert sorted(q for q, _, _ in wrong.wrong) == [
        "www.zone.test A",
        "www.zone.test AAAA",
        "www.zone.test MX",
    ]
    assert all(got.startswith("SERVFAIL") for _, _, got in wrong.wrong)


def test_a_changed_zone_gives_wrong_answers_and_exit_1(tmp_path: Path) -> None:
    zone = dict(ZONE)
    zone["v4.zone.test"] = {"A": ["192.0.2.99"]}
    zone_file = tmp_path / "zone.db"
    zone_file.write_text(to_zone_file(ZONE, ORIGIN))
    path = hosts(tmp_path, ["v4.zone.test", "www.zone.test"])
    with serve_in_thread(zone) as changed:
        proc = cli(path, "-n", changed.nameserver, "--check-zone", str(zone_file), "-q")
    assert proc.returncode == 1, proc.stderr
    assert "2 checked against the zone files: 1 wrong" in proc.stdout
    assert "wrong        v4.zone.test A: expected NOERROR|192.0.2.4|, got NOERROR|192.0.2.99|" in (
        proc.stdout
    )


def test_calibration_pass_then_answers_compared(tmp_path: Path, server: LoopbackDNSServer) -> None:
    """The calibration pass sees SERVFAIL once for www; the loaded run's real answer then
    differs from it: one wrong answer, found without a zone file."""
    path = hosts(tmp_path, ["www.zone.test", "v4.zone.test", "nothing.zone.test"] * 3)
    server.set_fault("www.zone.test", Fault.SERVFAIL, times=1)
    result = run(BenchConfig([server.nameserver], [path], calibrate=True))
    c = result.total.counts
    assert (c["sent"], c["checked"], c["wrong"]) == (9, 9, 3)
    assert asked(server) == Counter(
        {("www.zone.test", A): 4, ("v4.zone.test", A): 4, ("nothing.zone.test", A): 4}
    )


class CapacityServer(LoopbackDNSServer):
    """Answers its first `capacity` queries, then drops the rest: a server that breaks at
    a known query, so the ramp's verdict does not depend on this machine's speed."""

    capacity = 60

    def _handle(
        self, data: bytes, transport: Any, client: tuple[str, int]
    ) -> tuple[bytes | None, float]:
        reply, delay = super()._handle(data, transport, client)
        return (reply if len(self.queries) <= self.capacity else None), delay


def test_ramp_stops_at_the_first_step_over_the_loss_bound(tmp_path: Path) -> None:
    async def scenario() -> BenchResult:
        async with CapacityServer(ZONE) as breaking:
            path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(50)])
            config = BenchConfig(
                [breaking.nameserver], [path], ramp=(50, 250, 50), step_seconds=0.4, timeout=0.2
            )
            # Steps of 20, 40, 60, 80, 100 queries: the third is lost from its first query.
            return await Bench(config).run()

    result = asyncio.run(scenario())
    verdicts = [(s.rate, s.verdict) for s in result.steps]
    assert verdicts[:3] == [(50, "ok"), (100, "ok"), (150, "loss")]
    assert len(verdicts) <= 4  # stopped soon after (a step may be under way by then)
    assert result.capacity == 100
    assert [s.tally.counts["sent"] for s in result.steps[:3]] == [20, 40, 60]
    assert result.total.counts["sent"] < 300  # not every step ran


def test_ramp_table_on_the_command_line(tmp_path: Path, server: LoopbackDNSServer) -> None:
    path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(10)])
    proc = cli(path, "-n", server.nameserver, "--ramp", "20:40:20", "--step-duration", "0.25")
    assert proc.returncode == 0, proc.stderr
    assert "step  target q/s" in proc.stdout
    assert "capacity     " in proc.stdout  # which step passed depends on this machine's load
    assert "bench: step 1: 20 q/s: sent 5, answered 5" in proc.stderr


def test_repeat_share_and_type_mix(tmp_path: Path, server: LoopbackDNSServer) -> None:
    names = [f"h{i}.zone.test" for i in range(20)]
    path = hosts(tmp_path, names)
    result = run(BenchConfig([server.nameserver], [path], repeat_share=0.5))
    assert result.total.counts["sent"] == 40
    counts = asked(server)
    assert sum(counts.values()) == 40
    assert set(counts) == {(n, A) for n in names}
    first = list(dict.fromkeys(q.name for q in server.queries))
    assert first == names  # each name first asked in list order: repeats come after
    server.queries.clear()
    mixed = run(BenchConfig([server.nameserver], [path], mix=[(A, 3), (AAAA, 1)]))
    assert mixed.total.counts["sent"] == 20
    assert Counter(q.type for q in server.queries) == {A: 15, AAAA: 5}


def test_query_log_replay_keeps_names_types_and_timing(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    log = tmp_path / "queries.log"
    log.write_text(
        "25-Nov-2026 14:11:00.000 queries: info: client @0x1 127.0.0.1#5300 (www.zone.test): "
        "query: www.zone.test IN A +E(0)K (127.0.0.1)\n"
        "25-Nov-2026 14:11:00.300 queries: info: client @0x1 127.0.0.1#5300 (v6.zone.test): "
        "query: v6.zone.test IN AAAA +E(0)K (127.0.0.1)\n"
        "25-Nov-2026 14:11:00.600 queries: info: client @0x1 127.0.0.1#5300 (zone.test): "
        "query: zone.test IN MX +E(0)K (127.0.0.1)\n"
    )
    config = BenchConfig([server.nameserver], [str(log)], replay=True, speed=2.0)
    result = run(config)
    assert result.total.counts["answered"] == 3
    assert [(q.name, q.type) for q in server.queries] == [
        ("www.zone.test", A),
        ("v6.zone.test", AAAA),
        ("zone.test", 15),
    ]
    assert result.last_reply >= 0.3  # the last one was due 0.6 s / 2 in


def test_workload_line_formats(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_text(
        "# comment\n\nwww.zone.test\nwww.zone.test AAAA\n192.0.2.1\n"
        "1700000000.5 v4.zone.test MX\n"
        "[1700000001] unbound[1:0] info: 127.0.0.1 v6.zone.test. AAAA IN\n"
        "bad name\nx.zone.test NOSUCH\nx..y\n"
    )
    work = read_workload([str(path)], types=[A])
    assert work.questions == [
        ("www.zone.test", A),
        ("www.zone.test", AAAA),
        ("1.2.0.192.in-addr.arpa", PTR),
        ("v4.zone.test", 15),
        ("v6.zone.test", AAAA),
    ]
    assert list(work.sequence) == [0, 1, 2, 3, 4]
    assert work.bad_lines == 3
    assert all(w.startswith(f"{path}:") for w in work.warnings)
    with pytest.raises(Exception, match="no time on this line"):
        read_workload([str(path)], timed=True)


def test_json_lines_hold_every_interval_and_the_summary(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    path = hosts(tmp_path, [f"h{i}.zone.test" for i in range(40)])
    out = tmp_path / "bench.jsonl"
    proc = cli(
        path, "-n", server.nameserver, "--qps", "100", "--interval", "0.1", "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    kinds = Counter(r["type"] for r in records)
    assert records[0]["type"] == "settings"
    assert records[-1]["type"] == "summary"
    assert kinds["interval"] >= 4
    intervals = [r for r in records if r["type"] == "interval"]
    summary = records[-1]
    assert sum(r["sent"] for r in intervals) == summary["sent"] == 40
    assert sum(r["answered"] for r in intervals) == summary["answered"] == 40
    assert summary["rcodes"] == {"NXDOMAIN": 40}
    assert set(summary["latency_ms"]) == {"p50", "p90", "p99", "p99.9", "max"}
    assert sum(n for _, _, n in summary["histogram_ms"]) == 40
    assert records[0]["mode"] == "rate"
    assert records[0]["tries"] == 1


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--qps", "10", "--ramp", "1:2:1"], "--qps and --ramp each set the pace"),
        (["--qps", "10", "-c", "5"], "-c is the closed loop's"),
        (["--ramp", "1:2:1", "--duration", "3"], "no --duration"),
        (["--mix", "A=1", "-t", "AAAA"], "--mix gives the types"),
        (["--speed", "2"], "--speed goes with --replay-timing"),
        (["--ramp", "5:1:1"], "expected 0 < FROM <= TO"),
        (["--mix", "A=x"], "expected TYPE=WEIGHT"),
        (["--check-zone", "/nonexistent/zone"], "cannot read /nonexistent/zone"),
    ],
)
def test_settings_that_cannot_work_are_refused(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    path = hosts(tmp_path, ["www.zone.test"])
    proc = cli(path, "-n", "127.0.0.1:53", *flags)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_histogram_buckets_and_percentiles() -> None:
    for us in [0, 1, 127, 128, 129, 255, 256, 1000, 123_456, 10**9]:
        lo, hi = bucket_bounds(bucket(us))
        assert lo <= us <= hi
        assert hi - lo <= max(1, us // 64)
    hist = Histogram()
    for ms in range(1, 101):
        hist.add(ms / 1000)
    assert abs((hist.percentile(50) or 0) - 0.050) < 0.001
    assert abs((hist.percentile(99) or 0) - 0.099) < 0.002
    assert hist.percentile(100) == hist.max == 0.1


def test_zone_file_outcomes(tmp_path: Path) -> None:
    zone = tmp_path / "z.db"
    zone.write_text(
        "$ORIGIN z.test.\n$TTL 1h\n"
        "@ IN SOA ns hostmaster ( 1 1h 10m\n 1d 1h ) ; comment\n"
        "  NS ns\nns A 192.0.2.1\nwww 300 IN A 192.0.2.2\n  AAAA 2001:db8::2\n"
        "alias CNAME www\nout CNAME www.other.test.\n*.wild A 192.0.2.3\n"
        'a.b.c A 192.0.2.4\nsub NS ns.sub\ntxt TXT "a;b" "c\\034"\n'
    )
    zones = read_zones([str(zone)])
    assert zones.expected("www.z.test", A) == "NOERROR|192.0.2.2|"
    assert zones.expected("www.z.test", 15) == "NODATA||"
    assert zones.expected("alias.z.test", A) == "NOERROR|192.0.2.2|www.z.test"
    assert zones.expected("nope.z.test", A) == "NXDOMAIN||"
    assert zones.expected("b.c.z.test", A) == "NODATA||"  # an empty non-terminal
    assert zones.expected("x.wild.z.test", A) == "NOERROR|192.0.2.3|"
    assert zones.expected("out.z.test", A) is None  # leaves the zone
    assert zones.expected("x.sub.z.test", A) is None  # delegated
    assert zones.expected("other.test", A) is None
    soa = "ns.z.test hostmaster.z.test 1 3600 600 86400 3600"
    assert zones.expected("z.test", 6) == f"NOERROR|{soa}|"
    assert zones.expected("txt.z.test", 16) == 'NOERROR|a;bc"|'
    assert outcome(0, ["WWW.Z.TEST"], ["Alias.Z.test"], 5) == "NOERROR|www.z.test|alias.z.test"


def test_bench_against_knot_checks_every_answer(tmp_path: Path) -> None:
    require_knot()
    zone = to_zone_file(ZONE, ORIGIN)
    (tmp_path / "zone.db").write_text(zone)
    lines = [f"{name} {rtype}" for name, node in ZONE.items() for rtype in node]
    lines += [f"h{i}.zone.test A" for i in range(500)]
    path = hosts(tmp_path, lines)
    with KnotServer(zone, ORIGIN) as knot:
        result = run(
            BenchConfig(
                [knot.nameserver], [path], zones=[str(tmp_path / "zone.db")], workers=2, window=20
            )
        )
    c = result.total.counts
    assert c["sent"] == c["answered"] == len(lines)
    assert c["checked"] == len(lines) - 2  # the reverse names are not in the zone file
    assert c["wrong"] == 0, result.wrong
    assert result.total.rcodes["NXDOMAIN"] == 500
