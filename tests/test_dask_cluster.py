"""`resolver.dask` and `resolve --dask` on a real cluster: a LocalCluster of two worker
processes (one thread each, shared by the module's tests) against the in-process DNS server
(in a thread of this process, on 127.0.0.1, which the workers query) and Knot. Every row is
checked against the zone; a worker SIGKILLed in the middle of a partition, a partition that
fails once and a run interrupted by SIGINT all end with exactly one row per (line, type).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest
from distributed import Client, LocalCluster

from resolver import Query, RecordType
from resolver.dask import read_lines, resolve_to_parts
from resolver.names import parse_line
from resolver.testing import Fault, LoopbackDNSServer, Zone, serve_in_thread, to_zone_file
from resolver.testing.knot import KnotServer
from tests._env import require_knot
from tests.oracle import BULK_ORIGIN, Oracle, bulk_zones, host_list

# The workers cannot import this module (FailingOnce is sent to them): pickle it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

COUNT = 400
TYPES = ["A", "AAAA", "MX"]
WAIT = 60  # seconds at most for anything this module waits for


@pytest.fixture(scope="module")
def zones() -> dict[str, Zone]:
    return dict(bulk_zones(COUNT))


@pytest.fixture(scope="module")
def server(zones: dict[str, Zone]) -> Iterator[LoopbackDNSServer]:
    merged: dict[str, Any] = {}
    for zone in zones.values():
        merged.update(zone)
    with serve_in_thread(merged) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture
def hosts(tmp_path: Path) -> tuple[Path, list[str]]:
    lines = host_list(COUNT)
    lines[5:5] = ["\udcff\udcfebad.bulk.test", "y" * 70_000, "", "# comment"]
    path = tmp_path / "hosts.txt"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape") + b"\n")
    return path, lines


def expected_of(
    lines: list[str], zones: dict[str, Zone]
) -> dict[tuple[int, str], tuple[str, list[str], list[str]]]:
    """(line, type) -> (status, sorted answers, CNAME chain): what the zone says."""
    oracle = Oracle(zones)
    expected: dict[tuple[int, str], tuple[str, list[str], list[str]]] = {}
    for number, text in enumerate(lines, start=1):
        raw = text.encode("utf-8", "surrogateescape")
        if len(raw) > 65536 or not _utf8(raw):
            expected |= {(number, t): ("INVALID", [], []) for t in TYPES}
            continue
        for item in parse_line(text, number, [RecordType[t] for t in TYPES]):
            key = (number, item.type.name)
            if isinstance(item, Query):
                expected[key] = oracle.expect(item.name, item.type.name)
            else:
                expected[key] = ("INVALID", [], [])
    return expected


def check_rows(rows: list[dict[str, Any]], lines: list[str], zones: dict[str, Zone]) -> None:
    """Exactly one row per (line, type) and each one what the zone says."""
    expected = expected_of(lines, zones)
    got = {(r["line"], r["type"]): r for r in rows}
    assert len(got) == len(rows), "a (line, type) was written twice"
    assert got.keys() == expected.keys()
    wrong = [
        (key, expected[key], (row["status"], sorted(row["answers"]), row["cnames"]))
        for key, row in got.items()
        if (row["status"], sorted(row["answers"]), row["cnames"]) != expected[key]
    ]
    assert not wrong, wrong[:5]


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def jsonl_rows(paths: list[Path]) -> list[dict[str, Any]]:
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


@contextlib.contextmanager
def cli(*args: str) -> Iterator[subprocess.Popen[str]]:
    """`resolver resolve ARGS` running (killed if still running at the end)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "resolver", "resolve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def finish(proc: subprocess.Popen[str], timeout: float = WAIT * 3) -> str:
    """Wait for `proc` (at most `timeout` seconds); its stderr."""
    _, err = proc.communicate(timeout=timeout)
    return err


def wait_for(condition: Any, what: str) -> Any:
    """Poll `condition()` until it is true (bounded: WAIT seconds)."""
    deadline = time.monotonic() + WAIT
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return found


@pytest.mark.parametrize("dns", ["loopback", "knot"])
def test_cli_on_the_cluster_every_row_checked(
    client: Client,
    server: LoopbackDNSServer,
    zones: dict[str, Zone],
    hosts: tuple[Path, list[str]],
    tmp_path: Path,
    dns: str,
) -> None:
    """Many small partitions merged into one -o file: every row what the zone says."""
    path, lines = hosts
    if dns == "knot":
        require_knot()
        texts = {origin: to_zone_file(zone, origin) for origin, zone in zones.items()}
        main = texts.pop(BULK_ORIGIN)
        with (
            KnotServer(main, BULK_ORIGIN, extra_zones=texts) as knot,
            cli(str(path), "-n", knot.nameserver, "-t", ",".join(TYPES),
                "--dask", client.scheduler.address, "--partition-size", "2k",
                "-o", str(tmp_path / "out.jsonl")) as proc,
        ):  # fmt: skip
            err = finish(proc)
    else:
        with cli(str(path), "-n", server.nameserver, "-t", ",".join(TYPES),
                 "--dask", client.scheduler.address, "--partition-size", "2k",
                 "-o", str(tmp_path / "out.jsonl")) as proc:  # fmt: skip
            err = finish(proc)
    assert proc.returncode == 0, err
    check_rows(jsonl_rows([tmp_path / "out.jsonl"]), lines, zones)
    assert sorted(os.listdir(tmp_path)) == ["hosts.txt", "out.jsonl"]  # the parts merged and gone
    assert re.search(r"\(\d{2,} partitions, 2 worker threads\)", err), err


@pytest.mark.parametrize("output", ["stdout", "out.csv"])
def test_stdin_into_stdout_or_a_file(
    client: Client,
    server: LoopbackDNSServer,
    zones: dict[str, Zone],
    hosts: tuple[Path, list[str]],
    tmp_path: Path,
    output: str,
) -> None:
    """Standard input is read once and split like a file; the parts merge into stdout, or
    into a CSV file with one header (and a byte order mark: --csv-bom); --qps is a budget
    for the whole cluster. (Each format's merge: tests/test_dask.py.)"""
    path, lines = hosts
    target = [] if output == "stdout" else ["-o", str(tmp_path / output), "--csv-bom"]
    with path.open("rb") as stdin:
        proc = subprocess.run(
            [sys.executable, "-m", "resolver", "resolve", "-n", server.nameserver,
             "-t", ",".join(TYPES), "--dask", client.scheduler.address,
             "--partition-size", "3k", "--qps", "20000", *target],
            stdin=stdin, capture_output=True, timeout=WAIT * 3, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    if output == "stdout":
        check_rows([json.loads(line) for line in proc.stdout.splitlines()], lines, zones)
        assert os.listdir(tmp_path) == ["hosts.txt"]
        return
    # CSV: one header, and each row's status (its list cells are the writers' business)
    text = (tmp_path / output).read_text()
    assert text.startswith("\ufeffquery,name,type")
    assert text.count("query,name,type") == 1
    assert text.count("\ufeff") == 1
    with (tmp_path / output).open(newline="") as f:
        got = [(int(r["line"]), r["type"], r["status"]) for r in csv.DictReader(f)]
    expected = expected_of(lines, zones)
    assert len(got) == len(expected)
    assert {(line, t): status for line, t, status in got} == {
        key: value[0] for key, value in expected.items()
    }
    assert sorted(os.listdir(tmp_path)) == ["hosts.txt", output]  # parts merged and removed


def test_no_nameserver_answering_is_exit_9(client: Client, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("a.test\nb.test\n")
    out = tmp_path / "out.jsonl"
    with cli(str(hosts), "-n", "127.0.0.1:9", "--timeout", "0.2", "--tries", "1",
             "--dask", client.scheduler.address, "-o", str(out)) as proc:  # fmt: skip
        err = finish(proc)
    assert proc.returncode == 9, err
    assert "no nameserver answered (127.0.0.1:9)" in err
    assert len(jsonl_rows([out])) == 2  # the rows are there all the same


class FailingOnce:
    """The lines of a partition, failing once (the marker file says it did) midway."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, lines: list[bytes]) -> Iterator[bytes]:
        for k, line in enumerate(lines):
            if k == len(lines) // 2 and not self.marker.exists():
                self.marker.touch()
                raise OSError("the input went away")
            yield line


def test_a_partition_failing_once_is_retried_whole(
    client: Client,
    server: LoopbackDNSServer,
    zones: dict[str, Zone],
    hosts: tuple[Path, list[str]],
    tmp_path: Path,
) -> None:
    path, lines = hosts
    read = read_lines([str(path)], blocksize=1500)
    counts = [len(part) for part in client.gather(client.compute(read.to_delayed()))]
    firsts = [1]
    for n in counts[:-1]:
        firsts.append(firsts[-1] + n)
    failing = read.map_partitions(FailingOnce(tmp_path / "failed"))
    parts = resolve_to_parts(
        failing, str(tmp_path / "parts"), TYPES, first_lines=firsts,
        nameservers=[server.nameserver], fallback="never", rate=5000,
    )  # fmt: skip
    done = client.compute(parts, retries=1).result(timeout=WAIT)
    assert (tmp_path / "failed").exists()
    check_rows(jsonl_rows([Path(p.path) for p in done]), lines, zones)
    assert sorted(os.listdir(tmp_path / "parts")) == sorted(Path(p.path).name for p in done)


def test_a_worker_killed_mid_partition(
    client: Client,
    server: LoopbackDNSServer,
    zones: dict[str, Zone],
    hosts: tuple[Path, list[str]],
    tmp_path: Path,
) -> None:
    """SIGKILL the worker process that is writing a part: Dask runs its partition again on
    a worker alive, the half-written part is never taken for one, rows are there once."""
    path, lines = hosts
    out = tmp_path / "out.jsonl"
    server.set_fault(None, Fault.DELAY, delay=0.02)
    with contextlib.ExitStack() as stack:
        stack.callback(server.clear_faults)
        proc = stack.enter_context(
            cli(str(path), "-n", server.nameserver, "-t", ",".join(TYPES), "-c", "8",
                "--dask", client.scheduler.address, "--partition-size", "8k", "-o", str(out))
        )  # fmt: skip
        parts = tmp_path / "out.jsonl.parts"

        def writing() -> Path | None:  # a part still being written, with rows in it
            names = os.listdir(parts) if parts.exists() else []
            temps = [parts / n for n in names if n.endswith(".tmp") and n.startswith(".part")]
            return next((t for t in temps if _size(t) > 0), None)

        temp = wait_for(writing, "a part being written")
        pid = int(re.fullmatch(r"\.part-\d+\.jsonl\.(\d+)-\w+\.tmp", temp.name)[1])  # type: ignore[index]
        os.kill(pid, signal.SIGKILL)
        err = finish(proc)
    assert proc.returncode == 0, err
    check_rows(jsonl_rows([out]), lines, zones)
    client.wait_for_workers(2, timeout=WAIT)  # the nanny restarts it, for the next tests


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_an_interrupted_run_resumes_only_unfinished_partitions(
    client: Client,
    server: LoopbackDNSServer,
    zones: dict[str, Zone],
    hosts: tuple[Path, list[str]],
    tmp_path: Path,
) -> None:
    path, lines = hosts
    out = tmp_path / "parts"
    args = [str(path), "-n", server.nameserver, "-t", ",".join(TYPES), "-c", "16", "-o",
            f"{out}/", "--dask", client.scheduler.address, "--partition-size", "1k"]  # fmt: skip
    server.set_fault(None, Fault.DELAY, delay=0.05)
    with contextlib.ExitStack() as stack:
        stack.callback(server.clear_faults)
        proc = stack.enter_context(cli(*args))
        wait_for(lambda: _recorded(out), "a part with rows recorded as finished")
        proc.send_signal(signal.SIGINT)
        err = finish(proc, WAIT)
    assert proc.returncode == 130, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    finished = [e for e in manifest["partitions"] if e["part"]]
    assert 0 < len(finished) < len(manifest["partitions"])
    inodes = {e["part"]: (out / e["part"]).stat().st_ino for e in finished}
    with cli(*args, "--resume") as proc:
        err = finish(proc)
    assert proc.returncode == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    entries = manifest["partitions"]
    check_rows(jsonl_rows([out / e["part"] for e in entries]), lines, zones)
    assert sorted(_names(out)) == sorted(["manifest.json", *(e["part"] for e in entries)])
    kept = sum(e["rows"] for e in finished)
    assert f"{kept:,} rows were already there" in err
    # The finished partitions were not done again: their parts are the first run's files.
    assert {part: (out / part).stat().st_ino for part in inodes} == inodes


def _recorded(out: Path) -> bool:
    """Whether the manifest in `out` records a finished part with rows."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (FileNotFoundError, ValueError):
        return False
    return any(e["part"] and e["rows"] for e in manifest["partitions"])


def _names(directory: Path) -> list[str]:
    return os.listdir(directory) if directory.exists() else []
