"""What the benchmarks read from the machine: /proc counters, socket buffers, its description.

CPU time of the whole machine (`machine_busy`), of one process (`process_cpu`) and of this
one with its children (`ours`) give the load others put on a shared machine while a client
ran; `settle` waits for a quiet moment. `udp_drops` and `udp_rcvbuf` read the server's UDP
sockets, `default_rcvbuf` raises their default size while knotd starts, and `machine`
describes the machine and software for the report.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import re
import resource
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from runner import SERVER, output

RMEM_DEFAULT = Path("/proc/sys/net/core/rmem_default")


@contextlib.contextmanager
def default_rcvbuf(size: int) -> Iterator[str]:
    """Raise net.core.rmem_default to `size` while the block runs, then restore it.

    knotd leaves its UDP sockets at the default receive buffer (about 200 KiB, a few hundred
    queries): a client with 1000 queries in flight overflows it, and a dropped query costs
    that client a 2 s retry. Sockets keep the size they were created with, so raising the
    default only while knotd starts is enough. Yields a note for the report.
    """
    try:
        old = int(RMEM_DEFAULT.read_text())
    except (OSError, ValueError):
        yield "server receive buffer: net.core.rmem_default unreadable, left alone"
        return
    if old >= size:
        yield f"server receive buffer: net.core.rmem_default is {old}"
        return
    try:
        RMEM_DEFAULT.write_text(str(size))
    except OSError:
        yield f"server receive buffer: net.core.rmem_default {old} (could not raise it)"
        return
    try:
        yield (
            f"server receive buffer: net.core.rmem_default raised from {old} to {size}"
            " while knotd started, then restored"
        )
    finally:
        RMEM_DEFAULT.write_text(str(old))


def udp_rcvbuf(port: int) -> int | None:
    """The receive buffer of the UDP socket bound to 127.0.0.1:`port` (from `ss`)."""
    text = output(["ss", "-uanmH", "sport", "=", f":{port}", "src", SERVER])
    found = re.search(r"rb(\d+)", text)
    return int(found.group(1)) if found else None


def udp_drops(ports: Sequence[int]) -> int:
    """Datagrams the kernel dropped so far on the UDP sockets bound to 127.0.0.1:`ports`."""
    wanted = {f"0100007F:{port:04X}" for port in ports}
    total = 0
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        for text in f:
            fields = text.split()
            if len(fields) > 12 and fields[1] in wanted:
                total += int(fields[-1])
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds spent so far by everything on the machine (all CPUs, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def process_cpu(pid: int | None) -> float:
    """CPU seconds spent so far by process `pid` (all its threads)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def ours() -> float:
    """CPU seconds of this process and of its children reaped so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def settle(knot_pid: int | None, budget: float, quiet: float = 0.1) -> float:
    """Wait (at most `budget` s) until nothing else on the machine has used more than `quiet`
    CPUs for a second; returns the seconds waited. Others' benchmarks and test runs on a
    shared machine come in bursts: starting a client in a quiet moment keeps its figures
    clean more often than not.
    """
    started = time.perf_counter()
    calm = 0
    while calm < 2 and time.perf_counter() - started < budget:
        busy, knot, mine = machine_busy(), process_cpu(knot_pid), ours()
        time.sleep(0.5)
        other = machine_busy() - busy - (process_cpu(knot_pid) - knot) - (ours() - mine)
        calm = calm + 1 if other < quiet * 0.5 else 0
    return time.perf_counter() - started


def port_53_free() -> bool:
    """Whether 127.0.0.1:53 can be bound (UDP and TCP), for knotd's second listener."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((SERVER, 53))
            except OSError:
                return False
    return True


def machine() -> dict[str, str]:
    lscpu = output(["lscpu"])
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lscpu.splitlines())
    )
    versions = []
    for package in ("pycares", "uvloop", "aiodns", "dnspython"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    dirty = output(["git", "status", "--porcelain", "--", "resolver", "pyproject.toml"])
    commit = output(["git", "rev-parse", "--short", "HEAD"]) or "?"
    return {
        "cpu": fields.get("Model name", platform.processor() or "?"),
        "cpus": fields.get("CPU(s)", str(os.cpu_count())),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "knot": output(["/usr/sbin/knotd", "--version"]) or output(["knotd", "--version"]),
        "adns": (output(["adnshost", "--version"]).splitlines() or ["-"])[0],
        "packages": ", ".join(versions),
        "resolver": commit + (" + uncommitted changes in resolver/" if dirty else ""),
    }
