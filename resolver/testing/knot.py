"""Run a throw-away Knot DNS authoritative server for tests and benchmarks.

:class:`KnotServer` writes one zone and a minimal ``knot.conf`` into a private
temporary directory, starts ``knotd`` in the foreground as a child process,
waits until it answers a SOA query for the zone apex and stops it again on
exit::

    with KnotServer(ZONE_TEXT, "knot.test") as server:
        run_resolver(nameserver=server.nameserver)  # "127.0.0.1:PORT"

Everything the server needs (configuration, zone file, LMDB databases, PID
file, control socket, log) lives in the temporary directory, so several
servers can run at once and nothing outside that directory is touched.  The
server only listens on loopback addresses (``host`` plus ``extra_listen``).

Knot DNS is not a Python dependency: install it with ``scripts/install
--with-server`` (Debian packages ``knot`` and ``knot-dnsutils``).  Use
:func:`knot_available` to find out whether it is there.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from resolver.testing.message import encode_query

__all__ = [
    "KnotError",
    "KnotServer",
    "find_knotd",
    "free_port",
    "knot_available",
]

#: Where Debian's ``knot`` package installs the daemon (``/usr/sbin`` is often
#: not on a non-root user's ``PATH``).
DEBIAN_KNOTD = "/usr/sbin/knotd"

#: How long :meth:`KnotServer.__enter__` waits for the first answer.
START_TIMEOUT = 10.0
#: How long :meth:`KnotServer.__exit__` waits after SIGTERM before SIGKILL.
STOP_TIMEOUT = 5.0

_PR_SET_PDEATHSIG = 1
# Log lines after which waiting longer for the zone to answer is pointless.
_FATAL_LOG_MARKERS = (
    "zone event 'load' failed",
    "zone cannot be created",
    "failed to load zone",
    "critical:",
)


class KnotError(RuntimeError):
    """knotd could not be started or did not answer in time."""


def find_knotd() -> str | None:
    """Return the path of the ``knotd`` binary, or ``None`` when it is missing."""
    found = shutil.which("knotd")
    if found is not None:
        return found
    if os.access(DEBIAN_KNOTD, os.X_OK):
        return DEBIAN_KNOTD
    return None


def knot_available() -> bool:
    """Tell whether Knot DNS (``knotd``) is installed on this machine."""
    return find_knotd() is not None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is currently free for both UDP and TCP on *host*.

    The port is found by binding UDP port 0 and then TCP on the same port; a
    few attempts are made in case the TCP side is taken.  Another process can
    still grab the port before it is used, so callers should be ready to retry.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise KnotError(f"no free UDP+TCP port found on {host}")


def _host_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _format_nameserver(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _pdeathsig_hook() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the kernel SIGTERM the child when the
    forking thread dies, or ``None`` where ``prctl`` is not available.

    ``prctl`` is looked up here, in the parent, so the child only calls it.
    """
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:  # pragma: no cover - runs in the child
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    return hook


class KnotServer:
    """A private ``knotd`` serving one zone on loopback, as a context manager.

    :param zone_text: zone file contents (master-file format); relative owner
        names are relative to *origin*.  It must contain the apex SOA.
    :param origin: the zone's domain, e.g. ``"knot.test"``.
    :param port: port to listen on; by default a free one is picked (and a new
        one is tried if another process takes it before knotd binds it).
    :param host: the address knotd listens on and that readiness is checked
        on; keep it a loopback address (``127.0.0.1`` or ``::1``).
    :param extra_listen: more knot ``listen`` entries, such as ``"::1@5353"``.
    :param udp_workers: number of knotd UDP worker threads.
    :param cpu: pin knotd to this CPU with ``taskset -c`` (for benchmarks).

    After ``__enter__`` the attributes :attr:`port` and :attr:`nameserver`
    (``"127.0.0.1:PORT"``) tell where to send queries, :attr:`workdir` is the
    temporary directory and :meth:`log` returns knotd's output so far.

    knotd runs in its own session (so a Ctrl-C aimed at the test run does not
    kill it before cleanup) and, when started from the main thread, with a
    parent-death signal so it does not outlive a killed Python process.
    """

    def __init__(
        self,
        zone_text: str,
        origin: str,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        extra_listen: Sequence[str] = (),
        udp_workers: int = 1,
        cpu: int | None = None,
        extra_zones: Mapping[str, str] | None = None,
    ) -> None:
        if udp_workers < 1:
            raise ValueError("udp_workers must be at least 1")
        self.zone_text = zone_text
        self.origin = origin.rstrip(".") + "."
        #: origin (with trailing dot) -> zone text, the main zone first.
        self.zones = {self.origin: zone_text} | {
            o.rstrip(".") + ".": text for o, text in (extra_zones or {}).items()
        }
        self.host = host
        self.extra_listen = tuple(extra_listen)
        self.udp_workers = udp_workers
        self.cpu = cpu
        self._auto_port = port is None
        self.port: int = port if port is not None else 0
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    # -- public API -----------------------------------------------------------

    @property
    def nameserver(self) -> str:
        """``"HOST:PORT"`` (``"[HOST]:PORT"`` for IPv6), as resolvers take it."""
        return _format_nameserver(self.host, self.port)

    @property
    def pid(self) -> int | None:
        """knotd's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def log(self) -> str:
        """Return everything knotd has logged so far (stdout and stderr)."""
        if self.workdir is None:
            return ""
        try:
            return (self.workdir / "knotd.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Self:
        if self._proc is not None:
            raise KnotError("KnotServer is already running")
        knotd = find_knotd()
        if knotd is None:
            raise KnotError("knotd not found: run scripts/install --with-server")
        if self.cpu is not None and shutil.which("taskset") is None:
            raise KnotError("taskset not found (util-linux), cannot pin knotd to a CPU")
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            if self._auto_port:
                self.port = free_port(self.host)
            self.workdir = Path(tempfile.mkdtemp(prefix="knot-"))
            try:
                self._start(knotd)
                self._wait_ready()
                return self
            except KnotError as exc:
                log = self.log()
                self._stop()
                port_taken = "address already in use" in log
                if port_taken and attempt + 1 < attempts:
                    continue
                raise KnotError(f"{exc}\n--- knotd output ---\n{log}") from None
            except BaseException:
                self._stop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    # -- internals ------------------------------------------------------------

    def _config(self, workdir: Path) -> str:
        listen = [f"{self.host}@{self.port}", *self.extra_listen]
        listen_yaml = ", ".join(f'"{item}"' for item in listen)
        return f"""\
# Generated by resolver.testing.knot.KnotServer; everything lives in {workdir}.
server:
    rundir: "{workdir}"
    pidfile: "{workdir}/knot.pid"
    listen: [ {listen_yaml} ]
    udp-workers: {self.udp_workers}
    tcp-workers: 1
    background-workers: 1

control:
    listen: "{workdir}/knot.sock"

database:
    storage: "{workdir}/db"

log:
  - target: stderr
    any: info

zone:
""" + "".join(
            f"""  - domain: "{origin}"
    file: "{workdir}/zone-{i}.db"
    storage: "{workdir}/db"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
"""
            for i, origin in enumerate(self.zones)
        )

    def _start(self, knotd: str) -> None:
        workdir = self.workdir
        assert workdir is not None
        (workdir / "db").mkdir()
        for i, text in enumerate(self.zones.values()):
            (workdir / f"zone-{i}.db").write_text(text)
        conf = workdir / "knot.conf"
        conf.write_text(self._config(workdir))
        argv = [knotd, "-c", str(conf)]
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only
        # use it from the main thread (a worker thread may end before we do).
        in_main_thread = threading.current_thread() is threading.main_thread()
        self._log_file = (workdir / "knotd.log").open("wb")
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                cwd=workdir,
                start_new_session=True,
                preexec_fn=_pdeathsig_hook() if in_main_thread else None,
            )
        except OSError as exc:
            raise KnotError(f"cannot run {argv[0]}: {exc}") from exc

    def _wait_ready(self) -> None:
        """Poll with SOA queries until knotd answers NOERROR for every zone's apex."""
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(self.zones)
        with socket.socket(_host_family(self.host), socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.1)
            last = "no answer"
            while waiting and time.monotonic() < deadline:
                code = proc.poll()
                if code is not None:
                    raise KnotError(f"knotd exited with status {code} during startup")
                log = self.log()
                if any(marker in log for marker in _FATAL_LOG_MARKERS):
                    raise KnotError(f"knotd could not load zone {waiting[0]}")
                qid = secrets.randbelow(0x10000)
                try:
                    sock.sendto(
                        encode_query(waiting[0], "SOA", qid=qid, rd=False), (self.host, self.port)
                    )
                    reply = sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError as exc:
                    # ECONNREFUSED: nothing bound yet (reported on the next call).
                    if exc.errno != errno.ECONNREFUSED:
                        raise
                    time.sleep(0.05)
                    continue
                if len(reply) < 12:
                    continue
                rid, flags, _qd, ancount = struct.unpack("!HHHH", reply[:8])
                if rid != qid:
                    continue
                rcode = flags & 0x000F
                if rcode == 0 and ancount > 0:
                    waiting.pop(0)
                    continue
                last = f"rcode {rcode}, {ancount} answers"
                time.sleep(0.05)
        if not waiting:
            return
        raise KnotError(
            f"knotd did not answer a SOA query for {waiting[0]} on "
            f"{self.nameserver} within {START_TIMEOUT:.0f} s ({last})"
        )

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                proc.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
