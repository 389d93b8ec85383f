"""The `resolver` command end to end: a real process, files in, files out, real DNS on loopback."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resolver.testing import Fault, LoopbackDNSServer, serve_in_thread
from tests.zones import ZONE

HOSTS = """\
# a comment, then a blank line

www.zone.test
ALIAS2.zone.test.
v6.zone.test
nothing.zone.test
bücher.zone.test
192.0.2.1
192.0.2.99
bad name
a..b
"""
#: (line, type) -> status for HOSTS asked with -t A,AAAA
EXPECTED = {
    (3, "A"): "NOERROR",
    (3, "AAAA"): "NOERROR",
    (4, "A"): "NOERROR",
    (4, "AAAA"): "NOERROR",
    (5, "A"): "NODATA",
    (5, "AAAA"): "NOERROR",
    (6, "A"): "NXDOMAIN",
    (6, "AAAA"): "NXDOMAIN",
    (7, "A"): "NOERROR",
    (7, "AAAA"): "NODATA",
    (8, "PTR"): "NOERROR",
    (9, "PTR"): "NXDOMAIN",
    (10, "A"): "INVALID",
    (10, "AAAA"): "INVALID",
    (11, "A"): "INVALID",
    (11, "AAAA"): "INVALID",
}


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(ZONE) as running:
        yield running


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_flag(request: pytest.FixtureRequest) -> list[str]:
    return ["--no-uvloop"] if request.param == "asyncio" else []


@pytest.fixture(params=["wire", "cares", "aiodns"])
def engine_flag(request: pytest.FixtureRequest) -> list[str]:
    return ["--engine", request.param]


def cli(
    *args: str, stdin: str | bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    proc = subprocess.run(
        [sys.executable, "-m", "resolver", *args],
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_file_to_jsonl_every_line_accounted_for(
    tmp_path: Path, server: LoopbackDNSServer, loop_flag: list[str], engine_flag: list[str]
) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(HOSTS)
    out = tmp_path / "out.jsonl"
    args = ["-n", server.nameserver, "-t", "A,AAAA", "-o", str(out), *loop_flag, *engine_flag]
    proc = cli("resolve", str(hosts), *args)
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(out.read_text())
    assert {(r["line"], r["type"]): r["status"] for r in rows} == EXPECTED
    assert len(rows) == len(EXPECTED)
    by_key = {(r["line"], r["type"]): r for r in rows}
    assert sorted(by_key[3, "A"]["answers"]) == ["192.0.2.1", "192.0.2.2"]
    assert by_key[4, "A"]["cnames"] == ["alias.zone.test", "www.zone.test"]
    assert by_key[4, "A"]["query"] == "ALIAS2.zone.test."
    assert by_key[4, "A"]["name"] == "alias2.zone.test"
    assert by_key[7, "A"]["name"] == "xn--bcher-kva.zone.test"
    assert by_key[8, "PTR"]["answers"] == ["www.zone.test"]
    assert by_key[10, "A"]["error"]
    assert "NOERROR 7, NODATA 2, NXDOMAIN 3, INVALID 4" in proc.stderr  # the summary
    assert "INVALID 4" in proc.stderr


def test_csv_output_parses_back(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(HOSTS)
    out = tmp_path / "out.csv"
    proc = cli(
        "resolve", str(hosts), "-n", server.nameserver, "-t", "A", "-t", "AAAA", "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(int(r["line"]), r["type"]): r["status"] for r in rows} == EXPECTED
    www = next(r for r in rows if r["line"] == "3" and r["type"] == "A")
    assert sorted(json.loads(www["answers"])) == ["192.0.2.1", "192.0.2.2"]


def test_stdin_to_stdout_and_several_files(tmp_path: Path, server: LoopbackDNSServer) -> None:
    (tmp_path / "b.txt").write_text("v6.zone.test\n")
    proc = cli(
        "resolve",
        "-",
        str(tmp_path / "b.txt"),
        "-n",
        server.nameserver,
        "-t",
        "aaaa",
        stdin="www.zone.test\r\n",
    )
    assert proc.returncode == 0, proc.stderr
    rows = sorted(jsonl(proc.stdout), key=lambda r: r["line"])
    assert [(r["line"], r["query"], r["status"]) for r in rows] == [
        (1, "www.zone.test", "NOERROR"),
        (2, "v6.zone.test", "NOERROR"),
    ]


def test_hostile_input_bytes_each_get_a_row(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hostile.txt"
    hosts.write_bytes(
        b"www.zone.test\nnul\x00.zone.test\n\xff\xfe.zone.test\n"
        + b"y" * 200_000
        + b"\nv4.zone.test"
    )
    proc = cli("resolve", str(hosts), "-n", server.nameserver)
    assert proc.returncode == 0, proc.stderr
    rows = {r["line"]: r for r in jsonl(proc.stdout)}
    assert sorted(rows) == [1, 2, 3, 4, 5]
    assert [rows[i]["status"] for i in range(1, 6)] == [
        "NOERROR",
        "INVALID",
        "INVALID",
        "INVALID",
        "NOERROR",
    ]
    assert "NUL" in rows[2]["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["resolve", "-t", "BOGUS", "x"], "unknown record type"),
        (
            ["resolve", "/nonexistent/hosts.txt", "-n", "127.0.0.1"],
            "cannot read /nonexistent/hosts.txt",
        ),
        (["resolve", "-n", "dns.example", "-"], "bad nameserver"),
        (["resolve", "-n", "127.0.0.1", "-o", "out.xlsx", "-"], "cannot tell the format"),
        (["resolve", "-c", "0", "-"], "must be positive"),
        (["resolve", "--timeout", "soon", "-"], "not a number"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_are_one_clear_line(args: list[str], message: str, tmp_path: Path) -> None:
    proc = cli(*args, stdin="")
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_ipv6_nameserver_with_an_unbracketed_port_is_refused(tmp_path: Path) -> None:
    """`-n ::1:5310` is not the address ::0.1.83.16 on port 53 (a query to a non-loopback
    address): refused, pointing at `[::1]:5310`; a --resolvers line of that form is a bad
    line (skipped, naming it: here the only one, so the run is refused)."""
    listed = tmp_path / "resolvers.txt"
    listed.write_text("# ours\n::1:5310\n")
    for args, hint in (
        (["-n", "::1:5310"], "bad nameserver '::1:5310'"),
        (["--resolvers", str(listed)], f"{listed}:2: bad nameserver '::1:5310'"),
    ):
        proc = cli("resolve", *args, "--tries", "1", "--timeout", "0.2", "-", stdin="x.test\n")
        assert proc.returncode == 2, proc.stderr
        assert hint in proc.stderr
        assert "[::1]:5310" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert proc.stdout == ""


def test_help_reads_well() -> None:
    proc = cli("resolve", "--help")
    assert proc.returncode == 0
    for option in (
        "-t TYPE",
        "-n HOST[:PORT]",
        "-c N",
        "--timeout S",
        "--tries N",
        "-o OUT",
        "--format",
        "--fallback",
    ):
        assert option in proc.stdout


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_interrupt_finishes_in_flight_and_exits_130(
    tmp_path: Path, workers: str, signum: signal.Signals, code: int
) -> None:
    hosts = tmp_path / "many.txt"
    hosts.write_text("".join(f"host{i}.zone.test\n" for i in range(5000)))
    out = tmp_path / "out.jsonl"
    with serve_in_thread(ZONE) as slow:
        slow.set_fault(None, Fault.DELAY, delay=0.05)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "resolver",
                "resolve",
                str(hosts),
                "-n",
                slow.nameserver,
                "-c",
                "20",
                "-o",
                str(out),
                "--workers",
                workers,
            ],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err
    rows = jsonl(out.read_text())  # every row whole
    assert 0 < len(rows) < 5000
    assert {r["status"] for r in rows} == {"NXDOMAIN"}
    assert len({r["line"] for r in rows}) == len(rows)
    assert b"interrupted" in err


def test_closed_pipe_ends_quietly(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"h{i}.zone.test\n" for i in range(3000)))
    shell = f"{sys.executable} -m resolver resolve {hosts} -n {server.nameserver} -q | head -n 1"
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", shell],
        capture_output=True,
        timeout=60,
        check=False,
        env=os.environ,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 1
    assert b"Traceback" not in proc.stderr


def test_demo_runs_offline(loop_flag: list[str]) -> None:
    proc = cli("demo", *loop_flag)
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(proc.stdout)
    statuses = {r["status"] for r in rows}
    assert {"NOERROR", "NODATA", "NXDOMAIN", "INVALID"} <= statuses
    assert "TIMEOUT" not in statuses
    assert "ERROR" not in statuses
    assert any(r["type"] == "PTR" and r["answers"] for r in rows)


def test_bad_settings_create_no_output_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\n")
    out = tmp_path / "out.csv"
    proc = cli("resolve", str(hosts), "-n", "dns.example", "-o", str(out))
    assert proc.returncode == 2
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_workers_merge_one_output(tmp_path: Path, server: LoopbackDNSServer, fmt: str) -> None:
    lines = [f"h{i}.zone.test" if i % 3 else "www.zone.test" for i in range(500)] + ["bad name"]
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("\n".join(lines) + "\n")
    out = tmp_path / f"out.{fmt}"
    proc = cli(
        "resolve",
        str(hosts),
        "-n",
        server.nameserver,
        "-t",
        "A,AAAA",
        "--workers",
        "2",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    if fmt == "csv":
        with out.open(newline="") as f:
            rows: list[dict[str, Any]] = list(csv.DictReader(f))
        assert out.read_text().count("query,name,type") == 1  # one header
    else:
        rows = jsonl(out.read_text())
    keys = [(int(r["line"]), r["type"]) for r in rows]
    assert len(keys) == len(set(keys)) == 2 * len(lines)
    assert {line for line, _ in keys} == set(range(1, len(lines) + 1))
    statuses = {(int(r["line"]), r["type"]): r["status"] for r in rows}
    assert statuses[1, "A"] == "NOERROR"
    assert statuses[2, "A"] == "NXDOMAIN"
    assert statuses[len(lines), "A"] == "INVALID"
    if len(os.sched_getaffinity(0)) > 1:  # (more workers than CPUs: capped)
        assert "(2 workers)" in proc.stderr
    assert f"NOERROR {2 * 167}" in proc.stderr


def test_rows_reach_the_output_while_the_input_is_slow(server: LoopbackDNSServer) -> None:
    """A producer piping names in slowly (`tail -f ... | resolver resolve -`): each row is
    written within about half a second of its answer, not held until more input comes."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "resolver", "resolve", "-", "-n", server.nameserver],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(b"www.zone.test\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        assert ready, "no row within 10 s while the input stayed open"
        first = json.loads(proc.stdout.readline())
        assert (first["line"], first["status"]) == (1, "NOERROR")
        proc.stdin.write(b"nothing.zone.test\n")
        proc.stdin.close()
        rest = jsonl(proc.stdout.read().decode())
        assert [(r["line"], r["status"]) for r in rest] == [(2, "NXDOMAIN")]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_workers_read_stdin(server: LoopbackDNSServer) -> None:
    names = "".join(f"n{i}.zone.test\n" for i in range(50)) + "www.zone.test\n"
    proc = cli("resolve", "-", "-n", server.nameserver, "--workers", "2", stdin=names)
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(proc.stdout)
    assert sorted(r["line"] for r in rows) == list(range(1, 52))
    assert next(r for r in rows if r["line"] == 51)["status"] == "NOERROR"


def test_bench_refuses_remote_servers_without_yes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\n")
    # Refused before anything is sent: no packet leaves for 192.0.2.1.
    proc = cli("bench", str(hosts), "-n", "192.0.2.1")
    assert proc.returncode == 2
    assert "not on this machine" in proc.stderr
    assert "--yes" in proc.stderr
    assert cli("bench", str(hosts)).returncode == 2  # no nameserver at all


def test_progress_goes_to_stderr_only(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"h{i}.zone.test\n" for i in range(3000)))
    server.set_fault(None, Fault.DELAY, delay=0.01)
    try:
        proc = cli("resolve", str(hosts), "-n", server.nameserver, "-c", "50", "--progress")
    finally:
        server.clear_faults()
    assert proc.returncode == 0, proc.stderr
    assert "of 3,000 (" in proc.stderr
    assert "NXDOMAIN" in proc.stderr
    # Not a terminal (a log file, a pipe): plain lines, no control sequences.
    assert "\x1b" not in proc.stderr
    assert "\r" not in proc.stderr
    assert proc.stderr.startswith("resolver: progress: line ")
    rows = jsonl(proc.stdout)  # the output stream holds rows only
    assert len(rows) == 3000
    quiet = cli("resolve", str(hosts), "-n", server.nameserver, "--progress", "-q")
    assert quiet.stderr.startswith("resolver: 3,000 results")  # the summary alone


def test_ordered_output_and_unique(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"h{i % 7}.zone.test\nwww.zone.test\n" for i in range(100)))
    with serve_in_thread(ZONE) as own:  # its own query count
        args = ["-n", own.nameserver, "--ordered", "--unique", "-t", "A,AAAA"]
        proc = cli("resolve", str(hosts), *args)
        asked = own.count("www.zone.test")
        both = cli("resolve", str(hosts), "--ordered", "--workers", "2", "-n", own.nameserver)
    assert proc.returncode == 0, proc.stderr
    rows = jsonl(proc.stdout)
    assert [(r["line"], r["type"]) for r in rows] == [
        (line, t) for line in range(1, 201) for t in ("A", "AAAA")
    ]
    assert asked == 2  # once per type
    assert both.returncode == 2
    assert "--ordered" in both.stderr


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an output file in any of the three formats."""
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            return list(csv.DictReader(f))
    if path.suffix == ".db":
        import sqlite3

        with contextlib.closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute("SELECT * FROM results")]
    return jsonl(path.read_text())


def _some_rows_written(out: Path) -> bool:
    """Rows are in `out` already (SQLite: committed; its WAL may grow before a commit)."""
    if out.suffix == ".db":
        import sqlite3

        try:
            return out.exists() and len(read_rows(out)) >= 200
        except sqlite3.Error:
            return False
    return out.exists() and out.stat().st_size >= 20_000


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".db"])
def test_killed_run_resumes_to_exactly_one_row_each(tmp_path: Path, suffix: str) -> None:
    count = 3000
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(
        "".join(f"h{i}.zone.test\n" if i % 50 else "www.zone.test\n" for i in range(count))
    )
    out = tmp_path / f"out{suffix}"
    with serve_in_thread(ZONE) as slow:
        slow.set_fault(None, Fault.DELAY, delay=0.02)
        args = [str(hosts), "-n", slow.nameserver, "-t", "A,AAAA", "-c", "30", "-o", str(out)]
        proc = subprocess.Popen([sys.executable, "-m", "resolver", "resolve", *args])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _some_rows_written(out):
            time.sleep(0.02)
        proc.kill()  # SIGKILL: no chance to flush or clean up
        proc.wait()
        before = len(read_rows(out))
        slow.clear_faults()
        resumed = cli("resolve", *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert 0 < before < 2 * count
    rows = read_rows(out)
    keys = [(int(r["line"]), r["type"]) for r in rows]
    assert len(keys) == len(set(keys)), "a row was written twice"
    assert set(keys) == {(line, t) for line in range(1, count + 1) for t in ("A", "AAAA")}
    assert "already there" in resumed.stderr


def test_resume_cuts_a_torn_last_row(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\nv4.zone.test\nnope.zone.test\n")
    out = tmp_path / "out.jsonl"
    assert cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(out)).returncode == 0
    rows = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(rows[:2]) + rows[2][:17])  # the last row half written
    proc = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(out), "--resume")
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["line"] for r in jsonl(out.read_text())) == [1, 2, 3]


def test_resume_needs_an_output_file(server: LoopbackDNSServer) -> None:
    proc = cli("resolve", "-", "-n", server.nameserver, "--resume", stdin="www.zone.test\n")
    assert proc.returncode == 2
    assert "-o FILE" in proc.stderr


def test_resolvers_file(tmp_path: Path, server: LoopbackDNSServer) -> None:
    """A server named twice (in the file and by -n, also as HOST and HOST:53) is asked and
    listed once, in the order first named; a bad line is skipped with a warning naming it;
    a file without one usable server fails."""
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\n")
    dead = closed_port()
    listed = tmp_path / "resolvers.txt"
    listed.write_text(
        f"# ours\n{server.nameserver}\n\n{server.nameserver}  # again\nresolver.example\n{dead}\n"
    )
    dead_too = dead.replace(":", ":0")  # the same server, written otherwise
    args = ["-n", dead_too, "--resolvers", str(listed), "-n", server.nameserver]
    proc = cli("resolve", str(hosts), *args)
    assert proc.returncode == 0, proc.stderr
    assert jsonl(proc.stdout)[0]["status"] == "NOERROR"
    servers = [line for line in proc.stderr.splitlines() if line.startswith("resolver: server ")]
    assert [line.split()[2] for line in servers] == [f"{dead}:", f"{server.nameserver}:"]
    assert f"warning: {listed}:5: bad nameserver 'resolver.example'" in proc.stderr
    assert "(skipped)" in proc.stderr
    listed.write_text("resolver.example\n# nothing else\n")
    bad = cli("resolve", str(hosts), "--resolvers", str(listed))
    assert bad.returncode == 2
    assert f"{listed} lists no usable nameserver (1 bad line skipped)" in bad.stderr


def test_more_workers_than_cpus_are_capped_with_a_warning(server: LoopbackDNSServer) -> None:
    cpus = len(os.sched_getaffinity(0))
    names = "".join(f"n{i}.zone.test\n" for i in range(20))
    proc = cli("resolve", "-", "-n", server.nameserver, "--workers", str(4 * cpus), stdin=names)
    assert proc.returncode == 0, proc.stderr
    assert f"--workers {4 * cpus} is more than the {cpus} CPU" in proc.stderr
    assert f"running {cpus}" in proc.stderr
    assert len(jsonl(proc.stdout)) == 20
    if cpus > 1:
        assert f"({cpus} workers)" in proc.stderr


def test_embedding_example_runs() -> None:
    example = Path(__file__).parent.parent / "examples" / "embed.py"
    proc = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "NOERROR ['2001:db8::20']"
    assert "1 example.test MX 10 mail.example.test 20 mail2.example.test" in lines
    assert "3 missing.example.test A NXDOMAIN" in lines
    assert "192.0.2.1 -> NOERROR example.test" in lines


#: A zone where every name of FAULTY_NAMES exists (a wildcard), for the mixed-fault run.
FAULTY_ZONE = {
    "m.test": {"SOA": ["ns1.m.test hostmaster.m.test 1 3600 600 86400 60"]},
    "*.m.test": {"A": ["192.0.2.9"], "AAAA": ["2001:db8::9"]},
}
#: One per name, in turn: what the server does to it, on about the given share of its
#: queries, and LATE_DUPLICATE's copy 50 ms later.
MIXED_FAULTS: list[tuple[Fault, float] | None] = [
    None,
    (Fault.DROP, 0.5),
    (Fault.SERVFAIL, 0.5),
    (Fault.GARBAGE, 0.5),
    (Fault.TRUNCATE, 0.5),
    (Fault.WRONG_ID, 0.5),
    (Fault.WRONG_QUESTION, 0.5),
    (Fault.LATE_DUPLICATE, 1.0),
    (Fault.REFUSED, 0.3),
    (Fault.FORMERR, 0.3),
]


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(FAULTY_ZONE) as running:
        for i in range(300):
            fault = MIXED_FAULTS[i % len(MIXED_FAULTS)]
            if fault is not None:
                kind, rate = fault
                delay = 0.05 if kind is Fault.LATE_DUPLICATE else 0.0
                running.set_fault(f"h{i}.m.test", kind, rate=rate, delay=delay)
        yield running


def mixed_lines() -> list[str]:
    """300 names under faults, with repeats, IPv4 literals, bad lines and comments."""
    lines = []
    for i in range(300):
        lines.append(f"h{i}.m.test")
        if i % 25 == 0:
            lines += [f"H{i // 2}.M.test.", f"192.0.2.{i % 256}", "bad..name", "# note", ""]
    return lines


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--engine", "cares"],
        ["--workers", "2"],
        ["--ordered", "--tries", "1"],
        ["--unique", "-t", "A,AAAA"],
        ["--engine", "cares", "--unique", "--format", "csv"],
        ["--deadline", "0.3", "-c", "7"],
        ["--engine", "aiodns", "--tries", "3"],  # c-ares doubles the timeout per try
    ],
    ids=[
        "default",
        "cares",
        "workers",
        "ordered",
        "unique",
        "cares-unique-csv",
        "deadline",
        "aiodns",
    ],
)
def test_mixed_faults_give_one_right_row_per_line(
    tmp_path: Path, faulty_server: LoopbackDNSServer, flags: list[str]
) -> None:
    """Every fault at once, under each way of running: each (line, type) exactly one row,
    and every answer the zone's (a wrong id, question or garbage never passes for one)."""
    lines = mixed_lines()
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("\n".join(lines) + "\n")
    csv_out = "csv" in flags
    out = tmp_path / ("out.csv" if csv_out else "out.jsonl")
    args = ["-n", faulty_server.nameserver, "--timeout", "0.1", "-o", str(out), *flags]
    proc = cli("resolve", str(hosts), *args)
    assert proc.returncode == 0, proc.stderr
    if csv_out:
        with out.open(newline="") as f:
            rows: list[dict[str, Any]] = list(csv.DictReader(f))
        for row in rows:
            row["answers"] = json.loads(row["answers"])
    else:
        rows = jsonl(out.read_text())
    types = ["A", "AAAA"] if "-t" in flags else ["A"]
    expected = []
    for number, line in enumerate(lines, 1):
        if line.startswith("192."):
            expected.append((number, "PTR"))
        elif line and not line.startswith("#"):
            expected += [(number, t) for t in types]
    assert sorted((int(r["line"]), r["type"]) for r in rows) == sorted(expected)
    zone = {"A": ["192.0.2.9"], "AAAA": ["2001:db8::9"]}
    statuses = set()
    for row in rows:
        statuses.add(row["status"])
        if row["status"] == "NOERROR":
            assert row["answers"] == zone[row["type"]], row
        else:
            assert not row["answers"], row
    assert {"NOERROR", "INVALID", "NXDOMAIN"} <= statuses  # PTRs: no reverse zone here


def closed_port() -> str:
    """`127.0.0.1:PORT` where nothing listens (its datagrams come back as ICMP errors)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize(
    "flags",
    [[], ["--engine", "cares"], ["--workers", "2"], ["--engine", "cares", "--workers", "2"]],
    ids=["wire", "cares", "workers", "cares-workers"],
)
def test_no_nameserver_ever_answered_exits_9(tmp_path: Path, flags: list[str]) -> None:
    """Nothing listening, or a server that drops everything: every row is still written,
    stderr says no nameserver answered, and the exit status is 9 (as dig's)."""
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\nh1.zone.test\nbad name\n192.0.2.1\n")
    dead = closed_port()
    proc = cli("resolve", str(hosts), "-n", dead, "--timeout", "0.2", "--tries", "2", *flags)
    assert proc.returncode == 9, proc.stderr
    assert "no nameserver answered" in proc.stderr
    rows = jsonl(proc.stdout)
    assert sorted(r["status"] for r in rows) == ["ERROR", "ERROR", "ERROR", "INVALID"]
    with serve_in_thread(ZONE) as mute:
        mute.set_fault(None, Fault.DROP)
        args = ["-n", mute.nameserver, "--timeout", "0.1", "--tries", "1", *flags]
        dropped = cli("resolve", str(hosts), *args)
        mute.set_fault(None, Fault.SERVFAIL)
        failing = cli("resolve", str(hosts), *args)
    assert dropped.returncode == 9, dropped.stderr
    assert {r["status"] for r in jsonl(dropped.stdout)} == {"TIMEOUT", "INVALID"}
    # A SERVFAIL is a reply: the server is there, the run is not "nothing answered".
    assert failing.returncode == 0, failing.stderr
    assert "no nameserver answered" not in failing.stderr


def test_answered_inputs_and_unasked_ones_exit_0(tmp_path: Path, server: LoopbackDNSServer) -> None:
    """Not "no answer": an empty input, an all-INVALID one (nothing was asked), and a run
    where one server of two is dead but the other answers."""
    dead = closed_port()
    assert cli("resolve", "-", "-n", dead, stdin="").returncode == 0
    invalid = cli("resolve", "-", "-n", dead, stdin="bad name\na..b\n# note\n")
    assert invalid.returncode == 0, invalid.stderr
    assert "no nameserver answered" not in invalid.stderr
    some = cli("resolve", "-", "-n", dead, "-n", server.nameserver, stdin="www.zone.test\n")
    assert some.returncode == 0, some.stderr
    assert jsonl(some.stdout)[0]["status"] == "NOERROR"
    assert "resolver: 1 result in " in some.stderr  # one, not "1 results"


def terminal_screen(data: bytes) -> list[str]:
    """The lines a terminal shows after receiving `data`: text, CR, LF and ESC [ K (erase
    to the end of the line), all the output may hold."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    text = data.decode("utf-8", "replace")
    i = 0
    while i < len(text):
        if text.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        char = text[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            lines.append("".join(line))
            line, col = [], 0
        elif col < len(line):
            line[col] = char
            col += 1
        else:
            line.append(char)
            col += 1
        i += 1
    return [*lines, "".join(line)]


def run_in_terminal(args: list[str], timeout: float = 60) -> tuple[int, bytes]:
    """Run `resolver ARGS` with stdout and stderr on one pseudo-terminal; its exit status
    and all it wrote there."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "resolver", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
        )
    finally:
        os.close(slave)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal is closed
                break
            if not chunk:
                break
            data += chunk
        return proc.wait(timeout=10), data
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def test_progress_line_never_runs_into_rows_on_the_same_terminal(tmp_path: Path) -> None:
    """Rows and the progress line on one terminal (`resolver resolve hosts --format csv`
    in a shell): the line is erased before rows are written and drawn again below them,
    so every line on the screen is a whole row or the summary."""
    names = [f"h{i}.zone.test" for i in range(30)] + [f"slow{i}.zone.test" for i in range(5)]
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("\n".join(names) + "\n")
    with serve_in_thread(ZONE) as slowed:
        for i in range(5):  # answered after the progress line is up
            slowed.set_fault(f"slow{i}.zone.test", Fault.DELAY, delay=1.2)
        code, data = run_in_terminal(
            ["resolve", str(hosts), "-n", slowed.nameserver, "--format", "csv"]
        )
    assert code == 0, data
    assert b"\x1b[K" in data
    assert b"line 30 of 35" in data  # the progress line was drawn, then rows came
    screen = [line for line in terminal_screen(data) if line]
    summary = [line for line in screen if line.startswith("resolver: ")]
    assert summary[0].startswith("resolver: 35 results"), screen  # (server lines after)
    rows = list(csv.reader([line for line in screen if line not in summary]))
    assert rows[0][:3] == ["query", "name", "type"]
    assert sorted(row[0] for row in rows[1:]) == sorted(names), screen
    assert all(len(row) == len(rows[0]) for row in rows), screen
