"""How the benchmarks run their processes: each client pinned, timed and measured.

`run_process` and `run_pool` start a client (a pool of them for adnshost) behind the CPU
pinning and GNU time, wait for its exit through a pidfd and take its CPU time from wait4();
`kill_all` ends whatever is still running on the way out. `snapshot_package` copies
resolver/ once per run so that every client measures the same code (`Child` is how they
are started), and `output` runs a helper command for its stdout.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER = "127.0.0.1"
#: knotd's startup check (resolver.testing.knot.START_TIMEOUT) is sized for the tests' small
#: zones; loading a few hundred thousand records takes longer.
KNOT_START_TIMEOUT = 120.0

#: Child processes still running, killed on the way out whatever happens.
_LIVE: set[subprocess.Popen[bytes]] = set()


class Child:
    """How clients are started: PYTHONPATH puts the snapshot of resolver/ first, and the
    working directory is not the checkout (whose resolver/ `python -c`/`-m` would find)."""

    env: dict[str, str] | None = None
    cwd: Path = ROOT


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


#: GNU time, when installed, reports a client's peak RSS (see `launcher`).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass
class Usage:
    """What one finished process (or a group of them) cost."""

    wall: float = 0.0
    cpu: float = 0.0
    maxrss_kb: int = 0
    returncode: int = 0
    timed_out: bool = False


def launcher(pin: Sequence[str], rss: Path | None) -> list[str]:
    """What goes before a client's argv: the CPU pinning, and GNU time writing the peak RSS
    (`%M`, KiB) to `rss`.

    A client's own `ru_maxrss` from wait4() is useless here: a process started by fork or
    vfork from this (large) Python process and then exec'd keeps, in ru_maxrss, the high-water
    mark of the memory it had before exec, i.e. this process's. GNU time is a small program
    that forks the client itself, so the client starts from time's few hundred KiB.
    """
    if rss is None or GNU_TIME is None:
        return list(pin)
    return [*pin, GNU_TIME, "-f", "%M", "-o", str(rss)]


def read_rss(rss: Path | None) -> int | None:
    """The peak RSS (KiB) GNU time wrote to `rss`, if it did."""
    if rss is None:
        return None
    try:
        last = rss.read_text().strip().splitlines()[-1]
        return int(last)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _spawn(
    argv: Sequence[str], stdin: Path | None, stdout: Path, stderr: Path
) -> subprocess.Popen[bytes]:
    with contextlib.ExitStack() as files:
        inp = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        out = files.enter_context(stdout.open("wb"))
        err = files.enter_context(stderr.open("ab"))
        proc = subprocess.Popen(
            list(argv),
            stdin=inp,
            stdout=out,
            stderr=err,
            cwd=Child.cwd,
            env=Child.env,
            start_new_session=True,
        )
    _LIVE.add(proc)
    return proc


def _reap(proc: subprocess.Popen[bytes], usage: Usage) -> None:
    """wait4() the exited `proc` and add its CPU time (and ru_maxrss) to `usage`."""
    _, status, rusage = os.wait4(proc.pid, 0)
    _LIVE.discard(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    usage.cpu += rusage.ru_utime + rusage.ru_stime
    usage.maxrss_kb = max(usage.maxrss_kb, rusage.ru_maxrss)
    if proc.returncode != 0 and usage.returncode == 0:
        usage.returncode = proc.returncode


def _exit_watch(proc: subprocess.Popen[bytes]) -> int:
    """A descriptor that becomes readable when `proc` exits."""
    return os.pidfd_open(proc.pid)


def run_process(
    argv: Sequence[str],
    *,
    pin: Sequence[str],
    stdout: Path,
    stderr: Path,
    timeout: float,
    stdin: Path | None = None,
) -> Usage:
    """Run one client process to its end (killed after `timeout` s) and measure it."""
    usage = Usage()
    rss = stdout.with_suffix(".rss")
    rss.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = _spawn([*launcher(pin, rss), *argv], stdin, stdout, stderr)
    fd = _exit_watch(proc)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            usage.timed_out = True
            _kill(proc)
        _reap(proc, usage)
    finally:
        os.close(fd)
    usage.wall = time.perf_counter() - started
    usage.maxrss_kb = read_rss(rss) or usage.maxrss_kb
    return usage


def run_pool(
    jobs: Sequence[tuple[Path, Path]],
    argv: Sequence[str],
    *,
    pin: Sequence[str],
    stderr: Path,
    parallel: int,
    timeout: float,
) -> Usage:
    """Run `argv` once per (stdin, stdout) job, `parallel` at a time, until all have exited.

    CPU time is the sum over the processes plus what this process spent starting and
    reaping them. Peak RSS is the first process's, taken through GNU time (wrapping every
    process would add time's own CPU to each); the others run without it.
    """
    usage = Usage()
    pending = list(reversed(jobs))
    running: dict[int, subprocess.Popen[bytes]] = {}
    rss = stderr.with_suffix(".rss")
    rss.unlink(missing_ok=True)
    first = True
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline = started + timeout
    try:
        while pending or running:
            while pending and len(running) < parallel:
                stdin, stdout = pending.pop()
                prefix = launcher(pin, rss if first else None)
                first = False
                proc = _spawn([*prefix, *argv], stdin, stdout, stderr)
                running[_exit_watch(proc)] = proc
            left = deadline - time.perf_counter()
            ready, _, _ = select.select(list(running), [], [], max(0.0, left))
            if not ready and left <= 0:
                usage.timed_out = True
                for proc in running.values():
                    _kill(proc)
                ready = list(running)
                pending.clear()
            for fd in ready:
                _reap(running.pop(fd), usage)
                os.close(fd)
    finally:
        for fd, proc in running.items():
            _kill(proc)
            _reap(proc, usage)
            os.close(fd)
    usage.wall = time.perf_counter() - started
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    usage.cpu += (self_after.ru_utime - self_before.ru_utime) + (
        self_after.ru_stime - self_before.ru_stime
    )
    usage.maxrss_kb = read_rss(rss) or usage.maxrss_kb
    return usage


def kill_all() -> None:
    for proc in list(_LIVE):
        _kill(proc)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)
        _LIVE.discard(proc)


def tail(path: Path, lines: int = 5) -> str:
    """The last `lines` lines of a client's output file, joined with " | "."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(text[-lines:])


def failure(usage: Usage, err: Path) -> str | None:
    """Why a client run failed (None: it did not), with the end of its stderr `err`."""
    if usage.timed_out:
        return "killed after the time limit"
    if usage.returncode != 0:
        return f"exit status {usage.returncode}: {tail(err)}"
    return None


def resolver_command() -> list[str]:
    """How to start `resolver`: the venv's script, else `python -m resolver`."""
    script = Path(sys.executable).parent / "resolver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resolver"]


def output(argv: Sequence[str], *, child: bool = False) -> str:
    """The stripped stdout of `argv` ("" if it cannot run); `child`: as clients are run."""
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            cwd=Child.cwd if child else ROOT,
            env=Child.env if child else None,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def snapshot_package(dest: Path, attempts: int = 6) -> str:
    """Copy the working tree's resolver/ package to `dest`/resolver and point every client at
    it (PYTHONPATH), so that one benchmark run measures one version of the code even while
    the tree is being edited; returns a digest of what was copied.

    A copy taken in the middle of someone's edit may not import: then wait and copy again.
    """
    target = dest / "resolver"
    error = ""
    for attempt in range(attempts):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(
            ROOT / "resolver", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        path = os.pathsep.join(p for p in (str(dest), os.environ.get("PYTHONPATH")) if p)
        Child.env = {**os.environ, "PYTHONPATH": path}
        Child.cwd = dest
        check = subprocess.run(
            [sys.executable, "-c", "import resolver.cli, resolver; print(resolver.__file__)"],
            capture_output=True,
            text=True,
            cwd=Child.cwd,
            env=Child.env,
        )
        if check.returncode == 0 and check.stdout.strip().startswith(str(target)):
            digest = hashlib.sha256()
            for file in sorted(target.rglob("*")):
                if file.is_file():
                    digest.update(str(file.relative_to(dest)).encode() + b"\0")
                    digest.update(file.read_bytes())
            return digest.hexdigest()[:12]
        error = (check.stderr.strip().splitlines() or [check.stdout.strip()])[-1]
        if attempt + 1 < attempts:
            log(f"the copy of resolver/ does not import ({error}); trying again in 5 s")
            time.sleep(5)
    raise SystemExit(f"throughput.py: resolver/ does not import: {error}")
