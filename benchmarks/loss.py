"""Bulk resolution where packets are lost: `resolver resolve` at its defaults against a stock
Knot DNS, with silent loss, with failing sends and behind Unbound, next to its peers.

    .venv/bin/python benchmarks/loss.py [--quick] [--names N] [--rounds R]
        [--scenarios stock,loss1,loss5,sendfail1,unbound,bind] [--clients resolve,massdns,...]
        [--resolver-args '-c 1000 --timeout 0.5']

(`scripts/bench --loss` installs what this needs and then runs it; root is required.) The
script re-executes itself inside a private network namespace (`unshare -n`: only a loopback
interface, brought up here), so that the nftables rules it sets there touch nothing else and
no packet can leave the machine. In it, one knotd (`resolver.testing.knot.KnotServer`, one UDP
worker, CPU 0, its sockets at the stock receive buffer: nothing raised) serves the workload
of benchlib on 127.0.0.1 at a free port (and at 127.0.0.1:53 for adnshost). Each round runs
every scenario and in each every client once, pinned to CPU 1:

- `stock`: nothing dropped;
- `lossP`: P% of the UDP datagrams to the server's port and P% of those from it dropped on
  an nftables input-hook chain (on loopback both directions pass the input hook);
- `sendfailP`: P% of the datagrams to the server's port dropped on an output-hook chain,
  which makes the client's send() fail with EPERM;
- `unbound`: the client asks a private Unbound (restarted before each client run: a cold
  cache), which asks knotd through a stub-zone per benchmark zone;
- `bind`: the client asks a private BIND (`named`, one worker thread, CPU 0, stock
  buffers) that serves the same zones itself, authoritatively, instead of knotd.

Every answer is checked against the zone. The report (benchmarks/loss-results.md, or
`--output`) has per scenario and client the medians of names/s, CPU, TIMEOUT, ERROR and
wrong rows, the server's CPU and the datagrams the kernel dropped at its sockets, and the
same-run ratios of `resolver resolve` to each peer. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    FORWARD_ORIGIN,
    KINDS,
    MAX_NAMES,
    REVERSE_ORIGIN,
    ClientReport,
    Line,
    build_workload,
    canon,
)
from clients import Adnshost as ThroughputAdnshost
from clients import Dnsperf as ThroughputDnsperf
from clients import Measurement, Setup, check_adns
from probes import machine, machine_busy, ours, process_cpu, settle, udp_drops, udp_rcvbuf
from runner import (
    KNOT_START_TIMEOUT,
    SERVER,
    failure,
    kill_all,
    output,
    resolver_command,
    run_process,
    snapshot_package,
    tail,
)

import resolver.testing.knot
from resolver.testing import encode_query
from resolver.testing.knot import KnotServer, free_port

HERE = Path(__file__).resolve().parent
#: The in-flight cap given to the peers that take one: `resolver resolve`'s default -c.
INFLIGHT = 250
#: Set in the environment of the copy of this script that runs inside the namespace.
NETNS_MARK = "RESOLVER_LOSS_BENCH_NETNS"
NFT_TABLE = "resolver_loss_bench"
DEFAULT_SCENARIOS = "stock,loss1,loss5,sendfail1,unbound,bind"
UNBOUND = "/usr/sbin/unbound"
NAMED = "/usr/sbin/named"
#: The servers a scenario can put in front of the client instead of knotd itself.
DAEMONS = {"unbound": UNBOUND, "bind": NAMED}


def log(message: str) -> None:
    print(f"loss: {message}", file=sys.stderr, flush=True)


# --- scenarios ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One network condition between the client and the server."""

    name: str
    #: percent of the datagrams dropped each way on the input hook (silent loss).
    loss: float = 0.0
    #: percent of the datagrams to the server dropped on the output hook (send() fails).
    send_fail: float = 0.0
    #: who answers the client: knotd itself, or "unbound" (recursive, to knotd) or "bind".
    server: str = "knot"

    @property
    def lossless(self) -> bool:
        return not self.loss and not self.send_fail

    @property
    def title(self) -> str:
        if self.server == "unbound":
            return "through Unbound (cold cache, stub-zones to knotd), nothing dropped"
        if self.server == "bind":
            return "BIND (named) serving the zones itself, stock socket buffers, nothing dropped"
        if self.loss:
            return f"{self.loss:g}% of datagrams dropped each way (input hook: silent loss)"
        if self.send_fail:
            return (
                f"{self.send_fail:g}% of datagrams to the server dropped on the output hook"
                " (send() fails with EPERM)"
            )
        return "nothing dropped, stock server socket buffers"

    def rules(self, port: int) -> str:
        """The nftables script that sets this scenario up (after `flush ruleset`)."""
        lines = []
        if self.loss:
            n = _per_10000(self.loss)
            lines += [
                "  chain input {",
                "    type filter hook input priority 0; policy accept;",
                f"    udp dport {port} numgen random mod 10000 < {n} counter drop",
                f"    udp sport {port} numgen random mod 10000 < {n} counter drop",
                "  }",
            ]
        if self.send_fail:
            n = _per_10000(self.send_fail)
            lines += [
                "  chain output {",
                "    type filter hook output priority 0; policy accept;",
                f"    udp dport {port} numgen random mod 10000 < {n} counter drop",
                "  }",
            ]
        if not lines:
            return "flush ruleset\n"
        return f"flush ruleset\ntable inet {NFT_TABLE} {{\n" + "\n".join(lines) + "\n}\n"


def _per_10000(percent: float) -> int:
    return max(1, min(10000, round(percent * 100)))


def parse_scenario(token: str) -> Scenario:
    """`stock`, `unbound`, `bind`, `lossP` or `sendfailP` (P a percentage, e.g. loss0.5)."""
    if token == "stock" or token in DAEMONS:
        return Scenario(token, server="knot" if token == "stock" else token)
    found = re.fullmatch(r"(loss|sendfail)(\d+(?:\.\d+)?)", token)
    if not found or not 0 < float(found.group(2)) <= 100:
        raise ValueError(f"unknown scenario {token!r}: stock, unbound, bind, lossP or sendfailP")
    percent = float(found.group(2))
    if found.group(1) == "loss":
        return Scenario(token, loss=percent)
    return Scenario(token, send_fail=percent)


# --- the private network namespace ----------------------------------------------------------


def _netns_inode(pid: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def in_private_netns() -> bool:
    """Whether this process runs in a network namespace of its own (not init's) with only
    a loopback interface: the only place where this script may set firewall rules."""
    if os.environ.get(NETNS_MARK) != "1":
        return False
    mine, init = _netns_inode("self"), _netns_inode("1")
    if mine is None or mine == init:
        return False
    return interfaces() == ["lo"]


def interfaces() -> list[str]:
    """The network interfaces of this process's namespace (/proc/self/net/dev)."""
    with open("/proc/self/net/dev") as f:
        return [text.split(":", 1)[0].strip() for text in f if ":" in text]


def enter_netns(argv: Sequence[str]) -> int:
    """Run this script again inside a new network namespace (`unshare -n`)."""
    if os.geteuid() != 0:
        log("needs root: a private network namespace (unshare -n) and nftables rules in it")
        return 2
    unshare = shutil.which("unshare")
    if unshare is None:
        log("unshare (util-linux) not found")
        return 2
    env = {**os.environ, NETNS_MARK: "1"}
    command = [unshare, "-n", "--", sys.executable, str(Path(__file__).resolve()), *argv]
    os.execve(unshare, command, env)
    return 1  # not reached


def loopback_up() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def nft(script: str) -> None:
    """Load an nftables script; only ever inside the private namespace."""
    if not in_private_netns():
        raise SystemExit("loss.py: refusing to touch nftables outside its own namespace")
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def nft_drops() -> int:
    """Datagrams the scenario's rules have dropped so far (their counters)."""
    text = output(["nft", "-j", "list", "ruleset"])
    try:
        items = json.loads(text).get("nftables", []) if text else []
    except json.JSONDecodeError:
        return 0
    total = 0
    for item in items:
        for expr in item.get("rule", {}).get("expr", []):
            if isinstance(expr, dict) and "counter" in expr:
                total += int(expr["counter"].get("packets", 0))
    return total


# --- Unbound ---------------------------------------------------------------------------------


def unbound_config(workdir: Path, port: int, knot_port: int) -> str:
    """A private Unbound: loopback only, iterator only, the benchmark zones as stub-zones to
    knotd, root hints that name only 127.0.0.1, everything else refused."""
    stubs = "".join(
        f'stub-zone:\n    name: "{zone}."\n    stub-addr: {SERVER}@{knot_port}\n'
        for zone in (FORWARD_ORIGIN, REVERSE_ORIGIN)
    )
    return f"""\
# Written by benchmarks/loss.py; everything lives in {workdir}.
server:
    directory: "{workdir}"
    chroot: ""
    username: ""
    pidfile: "{workdir}/unbound.pid"
    do-daemonize: no
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    interface: {SERVER}
    port: {port}
    outgoing-interface: {SERVER}
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "iterator"
    root-hints: "{workdir}/root.hints"
    local-zone: "." refuse
    local-zone: "test." nodefault
    local-zone: "{FORWARD_ORIGIN}." transparent
    local-zone: "{REVERSE_ORIGIN}." transparent
remote-control:
    control-enable: no
{stubs}"""


#: Root hints naming only a loopback address: even a stray priming query stays here.
ROOT_HINTS = ".  3600000 NS loopback.root.\nloopback.root.  3600000 A 127.0.0.1\n"


class Daemon:
    """A private DNS server on 127.0.0.1 at a free port, started anew for each client run
    (for Unbound: a cold cache)."""

    name = ""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.port = 0
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        #: lines from its log worth a look (errors, sends that failed), all runs.
        self.complaints: Counter[str] = Counter()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def configure(self, workdir: Path) -> list[str]:
        """Write the configuration into `workdir`; -> the command that runs the server."""
        raise NotImplementedError

    def start(self) -> None:
        self.port = free_port(SERVER)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        argv = self.configure(self.workdir)
        if self.cpu is not None:
            argv = ["taskset", "-c", str(self.cpu), *argv]
        with (self.workdir / "server.log").open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 10.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.2)
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log()[-500:]}")
                try:
                    sock.sendto(
                        encode_query(f"ns.{FORWARD_ORIGIN}", "A", qid=7), (SERVER, self.port)
                    )
                    reply = sock.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    time.sleep(0.05)
                    continue
                if len(reply) >= 8:
                    _id, flags, _qd, ancount = struct.unpack("!HHHH", reply[:8])
                    if flags & 0xF == 0 and ancount > 0:
                        return
                time.sleep(0.05)
        raise RuntimeError(
            f"{self.name} did not answer within {timeout:.0f} s: {self.log()[-500:]}"
        )

    def log(self) -> str:
        if self.workdir is None:
            return ""
        try:
            return (self.workdir / "server.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for text in self.log().splitlines():
            if " error: " in text or "unreachable" in text or "failed" in text:
                self.complaints[re.sub(r"^\[[^]]*\]\s*", "", text)[:160]] += 1
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


class Unbound(Daemon):
    """A private Unbound, asking knotd through stub-zones."""

    name = "unbound"

    def __init__(self, knot_port: int, cpu: int | None) -> None:
        super().__init__(cpu)
        self.knot_port = knot_port

    def configure(self, workdir: Path) -> list[str]:
        conf = workdir / "unbound.conf"
        (workdir / "root.hints").write_text(ROOT_HINTS)
        conf.write_text(unbound_config(workdir, self.port, self.knot_port))
        check = subprocess.run(
            ["unbound-checkconf", str(conf)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"unbound-checkconf: {check.stdout.strip()} {check.stderr.strip()}")
        return [UNBOUND, "-d", "-c", str(conf)]


def bind_config(workdir: Path, port: int) -> str:
    """A private BIND: authoritative for the benchmark zones only, loopback only."""
    zones = "".join(
        f'zone "{zone}" {{ type primary; file "{workdir}/{zone}.zone"; }};\n'
        for zone in (FORWARD_ORIGIN, REVERSE_ORIGIN)
    )
    return f"""\
// Written by benchmarks/loss.py; everything lives in {workdir}.
options {{
    directory "{workdir}";
    pid-file "{workdir}/named.pid";
    session-keyfile "{workdir}/session.key";
    listen-on port {port} {{ {SERVER}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
}};
controls {{ }};
{zones}"""


class Bind(Daemon):
    """A private BIND (`named -g -n 1`) serving the benchmark's zones itself."""

    name = "bind"

    def __init__(self, zones: dict[str, str], cpu: int | None) -> None:
        super().__init__(cpu)
        self.zones = zones

    def configure(self, workdir: Path) -> list[str]:
        for origin, text in self.zones.items():
            (workdir / f"{origin}.zone").write_text(text)
        conf = workdir / "named.conf"
        conf.write_text(bind_config(workdir, self.port))
        check = subprocess.run(
            ["named-checkconf", str(conf)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise RuntimeError(f"named-checkconf: {check.stdout.strip()} {check.stderr.strip()}")
        return [NAMED, "-g", "-4", "-n", "1", "-c", str(conf)]

    def _wait_ready(self, timeout: float = 60.0) -> None:
        super()._wait_ready(timeout)  # loading 200,000 names takes a few seconds


def daemon_version(kind: str) -> str:
    text = output([DAEMONS[kind], "-v" if kind == "bind" else "-V"])
    first = text.splitlines()[0] if text else "?"
    return f"Unbound {first.removeprefix('Version ')}" if kind == "unbound" else first


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Run(Measurement):
    """One client's figures in one scenario of one round."""

    scenario: str = ""
    timeouts: int = 0
    errors: int = 0
    server_cpu: float = 0.0
    #: CPU of the Unbound or BIND in front of the client, if any.
    daemon_cpu: float | None = None
    server_drops: int = 0
    nft_drops: int = 0

    @property
    def wrong(self) -> int:
        """Rows neither right nor TIMEOUT nor ERROR: other answers, SERVFAIL, missing rows."""
        return max(0, self.names - self.correct - self.timeouts - self.errors)

    @classmethod
    def of(cls, m: Measurement, scenario: str, statuses: dict[str, int]) -> Run:
        run = cls(**{f.name: getattr(m, f.name) for f in dataclasses.fields(Measurement)})
        run.scenario = scenario
        run.timeouts = statuses.get("TIMEOUT", 0)
        run.errors = statuses.get("ERROR", 0)
        return run


def _statuses(m: Measurement) -> dict[str, int]:
    text = m.extra.get("statuses")
    return dict(json.loads(text)) if text else {}


def check_rows(
    results: Iterable[tuple[int, str]], lines: Sequence[Line]
) -> tuple[int, Counter[str]]:
    """(correct lines, statuses) from (line index, canonical outcome) pairs; each line counts
    once, the first time it is seen."""
    seen: set[int] = set()
    statuses: Counter[str] = Counter()
    correct = 0
    for index, got in results:
        if not 0 <= index < len(lines) or index in seen:
            continue
        seen.add(index)
        statuses[got.split("|", 1)[0]] += 1
        correct += got == lines[index].expect
    return correct, statuses


def _jsonl_outcomes(path: Path) -> Iterable[tuple[int, str]]:
    with path.open() as f:
        for text in f:
            row = json.loads(text)
            got = canon(row["status"], row.get("answers") or [], row.get("cnames") or [])
            yield int(row.get("line", 0)) - 1, got


# --- the clients ----------------------------------------------------------------------------


class LossClient:
    """One way of resolving the workload in a scenario; `run` measures it once."""

    name = ""
    #: `resolver resolve` rows: the ratios compare them with every other client.
    is_reference = False

    def applies(self, scenario: Scenario) -> bool:
        return True

    def command(self, setup: Setup) -> list[str]:
        raise NotImplementedError

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        raise NotImplementedError

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")


class ResolveCli(LossClient):
    """`resolver resolve HOSTS -n SERVER -o OUT.jsonl` at its defaults (or with `extra`)."""

    is_reference = True

    def __init__(self, extra: Sequence[str] = ()) -> None:
        self.extra = list(extra)
        self.name = "resolve" + (f" {shlex.join(self.extra)}" if self.extra else "")

    def command(self, setup: Setup) -> list[str]:
        out = setup.tmp / f"{self.slug}.jsonl"
        # --fallback never: with -n the default (auto) never asks the system either; said
        # explicitly so that no change of default can send a query to /etc/resolv.conf's.
        return [
            *resolver_command(),
            "resolve",
            str(setup.hosts),
            "-n",
            setup.nameserver,
            "-o",
            str(out),
            "--fallback",
            "never",
            *self.extra,
        ]

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        stdout, stderr = setup.files(self.slug)
        result = setup.tmp / f"{self.slug}.jsonl"
        result.unlink(missing_ok=True)
        usage = run_process(
            self.command(setup), pin=setup.pin, stdout=stdout, stderr=stderr, timeout=setup.timeout
        )
        m = Measurement(self.name, round_, len(setup.lines), usage.wall, usage.cpu)
        m.maxrss_kb, m.error = usage.maxrss_kb, failure(usage, stderr)
        m.extra["summary"] = tail(stderr, 1)
        statuses: Counter[str] = Counter()
        if result.exists():
            m.correct, statuses = check_rows(_jsonl_outcomes(result), setup.lines)
            result.unlink()
        m.extra["statuses"] = json.dumps(dict(statuses), sort_keys=True)
        return Run.of(m, scenario.name, statuses)


class Massdns(LossClient):
    """massdns at `-s SIZE`, everything else at its defaults, NDJSON out (`-o Je`: a record
    for every name, failures too). It takes one record type per run, so it runs twice in a
    row (the A names, then the PTR names); wall and CPU are the sum of the two."""

    def __init__(self, binary: str, size: int) -> None:
        self.binary = binary
        self.size = size
        self.name = f"massdns -s {size}"

    def _argv(self, setup: Setup, qtype: str) -> list[str]:
        return [
            self.binary,
            "-r",
            str(setup.tmp / "massdns-resolvers.txt"),
            "-t",
            qtype,
            "-s",
            str(self.size),
            "-o",
            "Je",
            "-w",
            str(setup.tmp / f"{self.slug}-{qtype}.ndjson"),
            str(setup.tmp / f"massdns-{qtype}.txt"),
        ]

    def command(self, setup: Setup) -> list[str]:
        return [*self._argv(setup, "A"), ";", *self._argv(setup, "PTR")]

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        (setup.tmp / "massdns-resolvers.txt").write_text(f"{setup.nameserver}\n")
        index: dict[tuple[str, str], int] = {}
        for number, line in enumerate(setup.lines):
            index[(line.qname, line.qtype)] = number
        for qtype in ("A", "PTR"):
            names = [line.qname for line in setup.lines if line.qtype == qtype]
            (setup.tmp / f"massdns-{qtype}.txt").write_text("".join(f"{n}\n" for n in names))
        stdout, stderr = setup.files(self.slug)
        m = Measurement(self.name, round_, len(setup.lines))
        started = time.perf_counter()
        for qtype in ("A", "PTR"):
            left = setup.timeout - (time.perf_counter() - started)
            usage = run_process(
                self._argv(setup, qtype),
                pin=setup.pin,
                stdout=stdout,
                stderr=stderr,
                timeout=max(1.0, left),
            )
            m.cpu += usage.cpu
            m.maxrss_kb = max(m.maxrss_kb, usage.maxrss_kb)
            m.error = m.error or failure(usage, stderr)
        m.wall = time.perf_counter() - started
        outputs = [setup.tmp / f"{self.slug}-{qtype}.ndjson" for qtype in ("A", "PTR")]
        m.correct, statuses = check_rows(_massdns_outcomes(outputs, index), setup.lines)
        for path in outputs:
            path.unlink(missing_ok=True)
        m.extra["statuses"] = json.dumps(dict(statuses), sort_keys=True)
        return Run.of(m, scenario.name, statuses)


def _massdns_outcomes(
    paths: Iterable[Path], index: dict[tuple[str, str], int]
) -> Iterable[tuple[int, str]]:
    for path in paths:
        with contextlib.suppress(FileNotFoundError), path.open(errors="replace") as f:
            for text in f:
                try:
                    row = json.loads(text)
                except json.JSONDecodeError:
                    continue
                qname, qtype = str(row.get("name", "")).rstrip(".").lower(), row.get("type", "")
                number = index.get((qname, qtype))
                if number is None:
                    continue
                yield number, _massdns_canon(qname, qtype, row)


def _massdns_canon(qname: str, qtype: str, row: dict[str, object]) -> str:
    if "error" in row:
        return canon("TIMEOUT" if row["error"] == "TIMEOUT" else "ERROR")
    status = str(row.get("status", "ERROR"))
    if status != "NOERROR":
        return canon(status)
    data = row.get("data")
    records = data.get("answers", []) if isinstance(data, dict) else []
    cname_of: dict[str, str] = {}
    found: list[tuple[str, str, str]] = []
    for rec in records:
        owner = str(rec.get("name", "")).rstrip(".").lower()
        rtype, value = str(rec.get("type", "")), str(rec.get("data", ""))
        if rtype == "CNAME":
            cname_of[owner] = value.rstrip(".").lower()
        found.append((owner, rtype, value))
    owner, chain = qname, list[str]()
    while owner in cname_of and len(chain) < 16:
        owner = cname_of[owner]
        chain.append(owner)
    answers = [value for o, rtype, value in found if o == owner and rtype == qtype]
    return canon("NOERROR" if answers else "NODATA", answers, chain)


class PythonPeer(LossClient):
    """A client script in benchmarks/ that prints a `ClientReport` (aiodns, blastdns)."""

    script = ""
    option = ""

    def command(self, setup: Setup) -> list[str]:
        return [
            sys.executable,
            str(HERE / self.script),
            "--nameserver",
            setup.nameserver,
            "--queries",
            str(setup.queries),
            "--expect",
            str(setup.expect),
            self.option,
            str(INFLIGHT),
        ]

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        stdout, stderr = setup.files(self.slug)
        usage = run_process(
            self.command(setup), pin=setup.pin, stdout=stdout, stderr=stderr, timeout=setup.timeout
        )
        m = Measurement(self.name, round_, len(setup.lines), usage.wall, usage.cpu)
        m.maxrss_kb, m.error = usage.maxrss_kb, failure(usage, stderr)
        statuses: dict[str, int] = {}
        if m.error is None:
            try:
                report = ClientReport.parse(stdout.read_text())
            except ValueError as exc:
                m.error = f"{exc}: {tail(stderr)}"
            else:
                m.names, m.correct, statuses = report.names, report.correct, report.statuses
                m.extra["inner_s"] = f"{report.elapsed:.2f}"
        m.extra["statuses"] = json.dumps(statuses, sort_keys=True)
        return Run.of(m, scenario.name, statuses)


class Aiodns(PythonPeer):
    """aiodns_client.py with INFLIGHT workers (c-ares: 2 s timeout, 3 tries)."""

    name = "aiodns"
    script = "aiodns_client.py"
    option = "--workers"


class Blastdns(PythonPeer):
    """blastdns_client.py: its batch API with the in-flight cap at INFLIGHT."""

    name = "blastdns"
    script = "blastdns_client.py"
    option = "--inflight"


class Dnsperf(LossClient):
    """dnsperf as the server's ceiling: every question once, 100 in flight, no retries; so
    only where nothing is dropped (a lost query is a lost row and holds its slot 5 s)."""

    name = "dnsperf"

    def __init__(self) -> None:
        self.inner = ThroughputDnsperf()

    def applies(self, scenario: Scenario) -> bool:
        return scenario.lossless

    def command(self, setup: Setup) -> list[str]:
        return self.inner.command(setup)

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        m = self.inner.run(setup, round_)
        lost = re.match(r"\d+", m.extra.get("lost", ""))
        run = Run.of(m, scenario.name, {"TIMEOUT": int(lost.group()) if lost else 0})
        return run


class Adnshost(LossClient):
    """adnshost (port 53 only: knotd's second listener), 200 names per process, 5 at a time;
    only in `stock` (it cannot be pointed at the scenario's port)."""

    name = "adnshost"

    def __init__(self) -> None:
        self.inner = ThroughputAdnshost()

    def applies(self, scenario: Scenario) -> bool:
        return scenario.name == "stock"

    def command(self, setup: Setup) -> list[str]:
        return self.inner.command(setup)

    def run(self, setup: Setup, round_: int, scenario: Scenario) -> Run:
        m, outputs = self.inner.run_chunks(setup, round_, self.slug)
        statuses: Counter[str] = Counter()
        for out in outputs:
            with contextlib.suppress(FileNotFoundError), out.open(errors="replace") as f:
                for text in f:
                    parts = text.split()
                    if text.startswith("; failed") and len(parts) >= 5:
                        abbrev = parts[4]
                        if abbrev == "timeout":
                            statuses["TIMEOUT"] += 1
                        elif abbrev not in ("nodata", "nxdomain"):
                            statuses["ERROR"] += 1
        m.correct = check_adns(iter(outputs), setup.lines)
        return Run.of(m, scenario.name, statuses)


def blastdns_version() -> str | None:
    """blastdns's version when the Python running the clients can import it."""
    probe = "import blastdns, importlib.metadata as m; print(m.version('blastdns'))"
    return output([sys.executable, "-c", probe], child=True) or None


def all_clients(args: argparse.Namespace, notes: list[str]) -> list[LossClient]:
    clients: list[LossClient] = [ResolveCli()]
    clients += [ResolveCli(shlex.split(extra)) for extra in args.resolver_args or []]
    massdns = os.environ.get("MASSDNS")
    if massdns and os.access(massdns, os.X_OK):
        clients += [Massdns(massdns, 1000), Massdns(massdns, 10000)]
    else:
        why = f"MASSDNS={massdns} is not an executable" if massdns else "MASSDNS is not set"
        notes.append(f"massdns rows left out: {why} (MASSDNS=/path/to/bin/massdns)")
    if blastdns_version():
        clients.append(Blastdns())
    else:
        notes.append("blastdns rows left out: blastdns cannot be imported (pip install blastdns)")
    clients.append(Aiodns())
    for tool in (Adnshost(), Dnsperf()):
        if shutil.which(tool.name) is None:
            notes.append(f"{tool.name} is not installed: left out")
        else:
            clients.append(tool)
    return clients


def quick_clients(clients: list[LossClient]) -> str:
    """--quick's default: the resolver rows and massdns -s 1000 (without massdns: blastdns
    and adnshost, the peers the issue's targets name where massdns is not at hand)."""
    names = {c.name for c in clients}
    peers = ["massdns -s 1000"] if "massdns -s 1000" in names else ["blastdns", "adnshost"]
    return ",".join(["resolve", *(p for p in peers if p in names)])


def select(clients: list[LossClient], wanted: str | None) -> list[LossClient]:
    """Clients by name or prefix (`massdns` selects both massdns rows, `resolve` every
    resolver row)."""
    if not wanted:
        return clients
    chosen: list[LossClient] = []
    for token in (t.strip() for t in wanted.split(",") if t.strip()):
        hits = [c for c in clients if c.name == token or c.name.startswith(token + " ")]
        if not hits:
            names = ", ".join(c.name for c in clients)
            raise SystemExit(f"loss.py: unknown client {token!r} (available: {names})")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in clients if c in chosen]


# --- the run ---------------------------------------------------------------------------------


def measure(
    client: LossClient,
    setup: Setup,
    round_: int,
    scenario: Scenario,
    knot: KnotServer,
    daemon: Daemon | None,
) -> Run:
    """Run `client` once, with the server-side counters around it."""
    knot_ports = [knot.port, 53]
    if daemon is not None:
        daemon.start()
        setup.port = daemon.port
    else:
        setup.port = knot.port
    try:
        socket_ports = [*knot_ports, *([daemon.port] if daemon else [])]
        drops, dropped = udp_drops(socket_ports), nft_drops()
        busy, mine = machine_busy(), ours()
        knot_cpu = process_cpu(knot.pid)
        daemon_cpu = process_cpu(daemon.pid) if daemon else 0.0
        run = client.run(setup, round_, scenario)
        knot_cpu = process_cpu(knot.pid) - knot_cpu
        if daemon is not None:
            run.daemon_cpu = process_cpu(daemon.pid) - daemon_cpu
        run.server_cpu = knot_cpu
        run.server_drops = udp_drops(socket_ports) - drops
        run.nft_drops = nft_drops() - dropped
        other = machine_busy() - busy - knot_cpu - (run.daemon_cpu or 0.0) - (ours() - mine)
        run.other_cpu = max(0.0, other)
    finally:
        if daemon is not None:
            daemon.stop()
    return run


def benchmark(
    args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack
) -> tuple[str, list[Run]]:
    notes: list[str] = []
    digest = snapshot_package(tmp / "src")
    available = all_clients(args, notes)
    clients = select(available, args.clients or (quick_clients(available) if args.quick else None))
    scenarios = args.scenario_list
    for kind, path in DAEMONS.items():
        if any(s.server == kind for s in scenarios) and not os.access(path, os.X_OK):
            raise SystemExit(f"loss.py: {path} is not installed (scripts/bench --loss installs it)")
    cores = os.cpu_count() or 1
    pinned = cores >= 2 and shutil.which("taskset") is not None
    log(f"building {args.names:,} names")
    workload = build_workload(args.names)
    resolver.testing.knot.START_TIMEOUT = KNOT_START_TIMEOUT
    info = machine()
    info["resolver"] += f", copied at the start (digest {digest}) and used by every client"
    log("starting knotd (stock socket buffers)")
    knot = stack.enter_context(
        KnotServer(
            workload.forward_zone,
            FORWARD_ORIGIN,
            host=SERVER,
            extra_listen=[f"{SERVER}@53"],
            udp_workers=1,
            cpu=0 if pinned else None,
            extra_zones={REVERSE_ORIGIN: workload.reverse_zone},
        )
    )
    rmem = Path("/proc/sys/net/core/rmem_default").read_text().strip()
    sizes = sorted({b for p in (knot.port, 53) if (b := udp_rcvbuf(p))})
    notes.append(
        f"knotd's UDP sockets: {sizes or '?'} bytes of receive buffer (net.core.rmem_default"
        f" {rmem}, not raised)"
    )
    if pinned:
        os.sched_setaffinity(0, {1})
    timeout = args.client_timeout or max(60.0, args.names / 200)
    setup = Setup(
        tmp, workload.lines, knot.port, ["taskset", "-c", "1"] if pinned else [], timeout, 0
    )
    daemons: dict[str, Daemon] = {
        "unbound": Unbound(knot.port, 0 if pinned else None),
        "bind": Bind(
            {FORWARD_ORIGIN: workload.forward_zone, REVERSE_ORIGIN: workload.reverse_zone},
            0 if pinned else None,
        ),
    }
    plan = [(s, [c for c in clients if c.applies(s)]) for s in scenarios]
    log(
        f"knotd on {knot.nameserver} (pid {knot.pid}); resolver {digest}; "
        + "; ".join(f"{s.name}: {', '.join(c.name for c in cs)}" for s, cs in plan)
    )
    runs: list[Run] = []
    budget = args.settle_budget
    try:
        for round_ in range(1, args.rounds + 1):
            for scenario, chosen in plan:
                nft(scenario.rules(knot.port))
                for client in chosen:
                    waited = settle(knot.pid, min(args.settle, max(0.0, budget)))
                    budget -= waited
                    run = measure(
                        client, setup, round_, scenario, knot, daemons.get(scenario.server)
                    )
                    run.extra["settle_s"] = f"{waited:.1f}"
                    runs.append(run)
                    status = run.error or f"{run.correct / max(run.names, 1):.2%} correct"
                    log(
                        f"round {round_}/{args.rounds} {scenario.name} {client.name}: "
                        f"{run.rate:,.0f}/s, CPU {run.cpu:.2f}s, TIMEOUT {run.timeouts}, "
                        f"ERROR {run.errors}, wrong {run.wrong}, server drops "
                        f"{run.server_drops}, nft drops {run.nft_drops}; {status}"
                    )
    finally:
        with contextlib.suppress(Exception):
            nft("flush ruleset\n")
    for kind, daemon in daemons.items():
        if daemon.complaints:
            top = "; ".join(f"{n}x {t}" for t, n in daemon.complaints.most_common(5))
            notes.append(f"{kind}'s log (worth a look): {top}")
        elif any(s.server == kind for s in scenarios):
            notes.append(f"{kind} logged no errors and no failed sends")
    used = [kind for kind in DAEMONS if any(s.server == kind for s in scenarios)]
    info["daemons"] = "; ".join(daemon_version(kind) for kind in used) or "-"
    info["nft"] = output(["nft", "--version"]) or "?"
    info["blastdns"] = blastdns_version() or "-"
    info["massdns"] = os.environ.get("MASSDNS") or "-"
    return report(args, plan, runs, setup, notes, info), runs


# --- the report ------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ok(runs: Iterable[Run]) -> list[Run]:
    return [r for r in runs if r.error is None and r.names]


def scenario_table(scenario: Scenario, clients: list[LossClient], runs: list[Run]) -> list[str]:
    rows = [
        "| client | names/s | CPU s | CPU µs/name | TIMEOUT | ERROR | wrong "
        "| server CPU s | server drops | nft drops | others' load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for client in clients:
        mine = [r for r in runs if r.scenario == scenario.name and r.client == client.name]
        ok = _ok(mine)
        if not ok:
            reason = next((r.error for r in mine if r.error), "not run")
            rows.append(f"| {client.name} | failed: {reason} |" + " |" * 9)
            continue
        failed = len(mine) - len(ok)
        name = client.name + (f" ({failed} failed)" if failed else "")
        server = f"{_median([r.server_cpu for r in ok]):.2f}"
        if scenario.server == "unbound":
            server += f" + unbound {_median([r.daemon_cpu or 0.0 for r in ok]):.2f}"
        elif scenario.server == "bind":
            server = f"bind {_median([r.daemon_cpu or 0.0 for r in ok]):.2f}"
        rows.append(
            f"| {name} | {_median([r.rate for r in ok]):,.0f} "
            f"| {_median([r.cpu for r in ok]):.2f} "
            f"| {_median([r.cpu_us_per_name for r in ok]):.1f} "
            f"| {_median([r.timeouts for r in ok]):,.0f} "
            f"| {_median([r.errors for r in ok]):,.0f} "
            f"| {_median([r.wrong for r in ok]):,.0f} "
            f"| {server} | {_median([r.server_drops for r in ok]):,.0f} "
            f"| {_median([r.nft_drops for r in ok]):,.0f} "
            f"| {_median([r.other_load for r in ok]):.2f} |"
        )
    return rows


def same_run_ratios(
    scenario: str, ref: str, peer: str, runs: list[Run]
) -> tuple[list[float], list[float]]:
    """Per round: ref's names/s / peer's, and peer's CPU per name / ref's."""
    by = {(r.client, r.round): r for r in _ok(runs) if r.scenario == scenario}
    speed, cpu = [], []
    for (name, round_), own in by.items():
        other = by.get((peer, round_))
        if name == ref and other is not None and other.rate:
            speed.append(own.rate / other.rate)
            if own.cpu_us_per_name:
                cpu.append(other.cpu_us_per_name / own.cpu_us_per_name)
    return speed, cpu


def ratio_table(scenario: Scenario, clients: list[LossClient], runs: list[Run]) -> list[str]:
    refs = [c for c in clients if c.is_reference]
    peers = [c for c in clients if not c.is_reference] + refs[1:]
    if not refs or not peers:
        return []
    rows = [
        "| peer |" + "".join(f" {r.name}: speed x | CPU/name x |" for r in refs),
        "| --- |" + " ---: | ---: |" * len(refs),
    ]
    for peer in peers:
        cells = ""
        for ref in refs:
            speed, cpu = same_run_ratios(scenario.name, ref.name, peer.name, runs)
            if peer is ref or not speed:
                cells += " - | - |"
                continue
            cells += f" {_median(speed):.2f} | {_median(cpu):.2f} |" if cpu else " - | - |"
        rows.append(f"| {peer.name} |{cells}")
    return rows


HEADLINE_PEERS = ("massdns -s 1000", "blastdns", "adnshost")


def headline(plan: list[tuple[Scenario, list[LossClient]]], runs: list[Run]) -> list[str]:
    """Scenarios x clients (names/s medians), and resolve's same-run ratios to the peers."""
    names = list(dict.fromkeys(c.name for _, cs in plan for c in cs))
    peers = [p for p in HEADLINE_PEERS if p in names]
    rows = [
        "| scenario |"
        + "".join(f" {n} |" for n in names)
        + "".join(f" resolve / {p} |" for p in peers),
        "| --- |" + " ---: |" * (len(names) + len(peers)),
    ]
    for scenario, chosen in plan:
        cells = ""
        for name in names:
            ok = _ok(r for r in runs if r.scenario == scenario.name and r.client == name)
            if name not in {c.name for c in chosen}:
                cells += " |"
            elif not ok:
                cells += " failed |"
            else:
                flag = "" if all(r.timeouts + r.errors + r.wrong == 0 for r in ok) else " *"
                cells += f" {_median([r.rate for r in ok]):,.0f}{flag} |"
        for peer in peers:
            speed, _ = same_run_ratios(scenario.name, "resolve", peer, runs)
            cells += f" {_median(speed):.2f}x |" if speed else " - |"
        rows.append(f"| {scenario.name} |{cells}")
    return rows


def every_run(runs: list[Run]) -> list[str]:
    rows = [
        "| round | scenario | client | wall s | names/s | CPU s | correct | TIMEOUT | ERROR "
        "| wrong | notes |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in runs:
        extra = {
            **r.extra,
            "server_cpu_s": f"{r.server_cpu:.2f}",
            "server_drops": str(r.server_drops),
            "nft_drops": str(r.nft_drops),
            "other_cpu_s": f"{r.other_cpu:.2f}",
        }
        if r.daemon_cpu is not None:
            extra[f"{r.scenario}_cpu_s"] = f"{r.daemon_cpu:.2f}"
        notes = "; ".join(f"{k}: {v}" for k, v in extra.items() if v)
        if r.error:
            notes = f"FAILED: {r.error}; {notes}"
        pct = f"{r.correct / r.names * 100:.2f}%" if r.names else "-"
        rows.append(
            f"| {r.round} | {r.scenario} | {r.client} | {r.wall:.2f} | {r.rate:,.0f} "
            f"| {r.cpu:.2f} | {pct} | {r.timeouts} | {r.errors} | {r.wrong} "
            f"| {notes.replace('|', '/')} |"
        )
    return rows


NOTES = [
    "names/s: names ÷ the client process's wall time, start-up included; CPU: user+sys of"
    " the client process(es) from wait4() (massdns: its two runs, A then PTR, added up;"
    " adnshost: all its processes plus this script starting them)",
    "TIMEOUT, ERROR: rows with that status (dnsperf: queries it counted lost; massdns:"
    " names it gave up on, `TIMEOUT` or `MAXRETRIES`); wrong: every other row that differs"
    " from the zone (another answer, SERVFAIL, a missing row). A `*` in the first table"
    " marks a cell with any such row",
    "server CPU: knotd's (and Unbound's) CPU while the client ran; server drops: datagrams"
    " the kernel dropped at the server's UDP sockets (/proc/net/udp, full receive buffer);"
    " nft drops: datagrams the scenario's nftables rules dropped",
    "`resolve` runs `resolver resolve` at its defaults (no -c, --timeout or --tries;"
    " `--fallback never` is what the default does with -n anyway); other `resolve ...` rows"
    " are tuned, labelled with their flags",
    f"In-flight caps: resolve's default -c {INFLIGHT}; blastdns max_concurrency ="
    f" max_inflight_per_resolver = {INFLIGHT} (its default caps one resolver at 2), cache"
    f" off, otherwise defaults; aiodns {INFLIGHT} workers (c-ares 2 s timeout, 3 tries);"
    " massdns at -s 1000 and its default -s 10000 (50 tries, 500 ms apart by default);"
    " dnsperf 100 (no retries: only where nothing is dropped); adnshost 5 processes x 200"
    " names, port 53 only (stock only)",
    "The resolver clients get PTR lines as IPv4 literals; the peers get the in-addr.arpa"
    " names; the same questions go on the wire",
]


def report(
    args: argparse.Namespace,
    plan: list[tuple[Scenario, list[LossClient]]],
    runs: list[Run],
    setup: Setup,
    notes: list[str],
    info: dict[str, str],
) -> str:
    counts = {kind: KINDS.count(kind) * 100 // len(KINDS) for kind in dict.fromkeys(KINDS)}
    mix = ", ".join(f"{kind} {pct}%" for kind, pct in counts.items())
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    pinning = (
        "pinned to CPU 0 (`taskset -c 0`), Unbound and BIND too; clients on CPU 1"
        if setup.pin
        else "not pinned (fewer than 2 CPUs)"
    )
    lines = [
        "# Loss benchmark results",
        "",
        f"- Date: {date}; command: `{shlex.join(['benchmarks/loss.py', *args.argv])}`",
        f"- Machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}, "
        f"Python {info['python']}",
        f"- Server: {info['knot']}, 1 UDP worker, {pinning}; {info['daemons']}",
        f"- Software: resolver {info['resolver']}; {info['packages']}; blastdns"
        f" {info['blastdns']}; massdns {info['massdns']}; {info['adns']}; {info['nft']}",
        f"- Workload: {len(setup.lines):,} unique names ({mix}), {FORWARD_ORIGIN} and"
        f" {REVERSE_ORIGIN}; every client asks each once",
        "- Network: a private network namespace (only loopback) made by the script; loss and"
        " send failures by nftables rules on the server's port there",
        f"- {args.rounds} round(s); in each, every scenario and in it every client once,"
        " interleaved; figures are medians over the rounds",
        "",
        "names/s, medians (`*`: some rows TIMEOUT, ERROR or wrong), and `resolver resolve`"
        " (defaults) / peer, same-run ratios:",
        "",
        *headline(plan, runs),
        "",
    ]
    for scenario, chosen in plan:
        lines += [
            f"## {scenario.name}: {scenario.title}",
            "",
            *scenario_table(scenario, chosen, runs),
        ]
        ratios = ratio_table(scenario, chosen, runs)
        if ratios:
            lines += ["", "Same-run ratios (above 1: resolve is faster / cheaper per name):", ""]
            lines += ratios
        lines.append("")
    lines += ["## Notes", "", *(f"- {n}" for n in [*NOTES, *notes]), ""]
    lines += ["## Every run", "", *every_run(runs), "", "## Commands", ""]
    clients = list({c.name: c for _, cs in plan for c in cs}.values())
    for client in clients:
        command = shlex.join([*setup.pin, *client.command(setup)]).replace(str(setup.tmp), "$TMP")
        lines.append(f"- {client.name}: `{command}`")
    rules = Scenario("x", loss=1, send_fail=1).rules(0).replace(" 0 ", " PORT ")
    rule_lines = [t.strip() for t in rules.splitlines() if t.strip().startswith("udp")]
    lines += [
        "- nftables, inside the namespace, shown for P = 1 (the bound is P x 100): lossP on an"
        " input-hook chain `"
        + "` and `".join(rule_lines[:2])
        + "`; sendfailP: on an output-hook chain `"
        + rule_lines[2]
        + "`",
    ]
    if any(scenario.server == "unbound" for scenario, _ in plan):
        lines += [
            "",
            "Unbound's configuration (`unbound -d -c CONF`, restarted before every client run):",
            "",
            "```",
            unbound_config(Path("$DIR"), 0, 0)
            .replace("@0", "@KNOT_PORT")
            .replace("port: 0", "port: PORT")
            .rstrip(),
            "```",
            "",
            f"with root hints naming only 127.0.0.1: `{ROOT_HINTS.splitlines()[1]}`",
        ]
    if any(scenario.server == "bind" for scenario, _ in plan):
        lines += [
            "",
            "BIND's configuration (`named -g -4 -n 1 -c CONF`, restarted before every client"
            " run; the zone files are knotd's):",
            "",
            "```",
            bind_config(Path("$DIR"), 0).replace("port 0", "port PORT").rstrip(),
            "```",
        ]
    return "\n".join(lines) + "\n"


# --- main ------------------------------------------------------------------------------------


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="resolver resolve at its defaults under loss, send failures and behind"
        " Unbound, next to its peers (needs root: a private network namespace)."
    )
    parser.add_argument("--names", type=int, help="unique names (default 200,000; --quick 20,000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument(
        "--scenarios",
        help=f"comma list (default {DEFAULT_SCENARIOS}): stock, unbound, bind,"
        " lossP (P%% each way), sendfailP (P%% of sends fail)",
    )
    parser.add_argument(
        "--clients",
        help="comma list of clients or prefixes: resolve, massdns, blastdns, aiodns, adnshost,"
        " dnsperf (default: all that are installed)",
    )
    parser.add_argument(
        "--resolver-args",
        action="append",
        metavar="ARGS",
        help="one more `resolver resolve` row with these extra flags, e.g."
        " '-c 1000 --timeout 0.5' (repeatable; quote them)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="20,000 names, 1 round, short settle; clients (unless --clients): the resolve"
        " rows and massdns -s 1000 (without MASSDNS: blastdns and adnshost)",
    )
    parser.add_argument(
        "--client-timeout", type=float, help="seconds before a client is killed (default: scaled)"
    )
    parser.add_argument("--output", type=Path, help="where the report goes")
    parser.add_argument(
        "--settle",
        type=float,
        help="before each client, wait up to S s for the rest of the machine to be quiet"
        " (default 5, --quick 1; 0: never)",
    )
    args = parser.parse_args(argv)
    args.argv = list(argv)
    args.names = args.names or (20_000 if args.quick else 200_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.settle is None:
        args.settle = 1.0 if args.quick else 5.0
    args.settle_budget = 0.0 if args.settle <= 0 else (10.0 if args.quick else 120.0)
    if args.output is None:
        quick = args.quick or args.names < 200_000 or args.rounds < 3
        args.output = (
            Path(tempfile.gettempdir()) / "loss-quick.md" if quick else HERE / "loss-results.md"
        )
    if not 1 <= args.names <= MAX_NAMES:
        parser.error(f"--names must be between 1 and {MAX_NAMES}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.scenario_list = [
            parse_scenario(t.strip())
            for t in (args.scenarios or DEFAULT_SCENARIOS).split(",")
            if t.strip()
        ]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if not in_private_netns():
        if os.environ.get(NETNS_MARK) == "1":
            log("not in a private network namespace with only loopback: stopping")
            return 2
        if shutil.which("nft") is None:
            log("nft not found: run scripts/bench --loss (installs nftables, unbound and bind9)")
            return 2
        return enter_netns(argv)
    loopback_up()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    if resolver.testing.knot.find_knotd() is None:
        log("knotd not found: run scripts/bench --loss (or scripts/install --with-server)")
        return 2
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="resolver-loss-"))
    try:
        with contextlib.ExitStack() as stack:
            text, runs = benchmark(args, tmp, stack)
    except resolver.testing.knot.KnotError as exc:
        log(f"knotd did not start: {str(exc)[-2000:]}")
        return 1
    except KeyboardInterrupt:
        log("interrupted: no report written")
        return 130
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f}s; report in {args.output}")
    args.output.write_text(text)
    print(text)
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
