"""The parent of a benchmark: the plan, the worker processes, and what they report merged.

`Bench(config).run()` reads the workload, checks the settings, optionally calibrates the
expected answers, starts the workers (`resolver.cli.bench.sender`, one process each), starts
them together, merges their tallies interval by interval (and ramp step by step), stops
a ramp at its first failing step, and returns a `BenchResult`. `stop()` ends the sending
early (what is in flight is still waited for).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import sys
import tempfile
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from resolver.cli.bench.expect import digest, expectations, read_zones
from resolver.cli.bench.plan import Mode, Plan, Schedule
from resolver.cli.bench.stats import Tally
from resolver.cli.bench.workload import Workload, read_workload, type_name
from resolver.codec import BadReply, encode_name
from resolver.model import ResolverError

__all__ = ["Bench", "BenchConfig", "BenchFailed", "BenchResult", "Step"]

#: Queries per second one worker is counted on for when choosing how many to start.
WORKER_RATE = 80_000
_MAX_SOCKETS = 64
_IDS_IN_USE = 60_000  # message ids of a socket counted on (of 65,536)
_READY_TIMEOUT = 60.0
_START_DELAY = 0.05  # seconds from "go" to the start: every worker is listening by then
#: A ramp step with more than this share of its queries sent late (see sender.BEHIND),
#: and at least `_BEHIND_LEAST` of them, measured the client: it is not judged, and the
#: ramp ends after `_CLIENT_STEPS` such steps in a row (the client cannot go faster).
_BEHIND_SHARE, _BEHIND_LEAST, _CLIENT_STEPS = 0.05, 10, 2


class BenchFailed(Exception):
    """A worker failed while the run went (its message says why)."""


@dataclass
class BenchConfig:
    """What to measure and how; see `resolver bench --help` for each setting."""

    servers: list[str]  # "host:port" / "[v6]:port"
    files: list[str]
    types: list[int] = field(default_factory=lambda: [1])
    mix: list[tuple[int, int]] | None = None
    repeat_share: float = 0.0
    replay: bool = False
    speed: float = 1.0
    seed: int = 0
    window: int = 100
    rate: float | None = None
    ramp: tuple[float, float, float] | None = None
    step_seconds: float = 5.0
    max_loss: float = 0.01  # a fraction
    max_p99: float = 0.100  # seconds
    duration: float | None = None
    timeout: float = 2.0
    tries: int = 1
    workers: int | None = None
    sockets: int | None = None
    interval: float = 1.0
    zones: list[str] = field(default_factory=list)
    calibrate: bool = False
    calibrate_rate: float = 2000.0
    edns: int | None = 1232

    @property
    def mode(self) -> Mode:
        if self.ramp is not None:
            return Mode.RAMP
        if self.replay:
            return Mode.REPLAY
        if self.rate is not None:
            return Mode.RATE
        return Mode.CLOSED


@dataclass
class Step:
    """One step of a ramp: its rate, its queries' tally, and whether it passed."""

    index: int
    rate: float
    tally: Tally
    seconds: float
    verdict: str = ""  # "ok", "loss", "p99", "client", or "" before judged

    @property
    def loss(self) -> float:
        sent = self.tally.counts["sent"]
        return self.tally.counts["lost"] / sent if sent else 0.0

    def public(self) -> dict[str, Any]:
        return {
            "step": self.index,
            "rate": self.rate,
            "loss": round(self.loss, 6),
            "verdict": self.verdict,
            **self.tally.public(self.seconds),
        }


@dataclass
class BenchResult:
    """What a run measured."""

    settings: dict[str, Any]
    machine: dict[str, str]
    #: Per interval: (start s, end s, tally of all workers).
    intervals: list[tuple[float, float, Tally]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    total: Tally = field(default_factory=Tally)
    #: Seconds from the start to the last reply, and to the end of the run.
    last_reply: float = 0.0
    elapsed: float = 0.0
    interrupted: bool = False
    capacity: float | None = None
    #: Wrong answers described: question, expected, got.
    wrong: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unchecked: int = 0

    @property
    def answered_rate(self) -> float:
        """Answered queries per second: from the start to the last reply."""
        answered = self.total.counts["answered"]
        return answered / self.last_reply if self.last_reply > 0 else 0.0


class Bench:
    """One benchmark run (see the module docstring)."""

    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self._stopping = False
        self._procs: list[asyncio.subprocess.Process] = []
        self.on_interval: Callable[[BenchResult], None] | None = None
        self.on_step: Callable[[Step], None] | None = None
        self.on_start: Callable[[BenchResult], None] | None = None

    def stop(self) -> None:
        """Stop sending (a signal, or a failed ramp step); the run then finishes."""
        self._stopping = True
        for proc in self._procs:
            if proc.stdin is not None and not proc.stdin.is_closing():
                with contextlib.suppress(OSError):
                    proc.stdin.write(b"stop\n")

    async def run(self) -> BenchResult:
        """Measure; raises ResolverError for settings or input that cannot work."""
        config = self.config
        servers = [_split(s) for s in config.servers]
        workload = read_workload(
            config.files,
            types=config.types,
            mix=config.mix,
            repeat_share=config.repeat_share,
            timed=config.replay,
            speed=config.speed,
            seed=config.seed,
        )
        questions = _wire_questions(workload)
        schedule = _schedule(config, workload)
        workers = config.workers or auto_workers(config, servers)
        if schedule.mode is Mode.CLOSED and config.window < workers:
            raise ResolverError(
                f"-c {config.window} is fewer queries outstanding than --workers {workers}"
            )
        needed = auto_sockets(config, schedule, workers)
        sockets = config.sockets or 1
        spare = max(0, needed - sockets)
        result = BenchResult(
            settings=self._settings(schedule, workload, workers, sockets, spare),
            machine=machine(),
        )
        result.notes += workload.warnings
        expected: array[int] | None = None
        texts: dict[int, str] = {}
        if config.zones:
            zones = read_zones(config.zones)
            expected, texts = expectations(zones, workload.questions)
        with tempfile.TemporaryDirectory(prefix="resolver-bench-") as tmp:
            plan = Plan(
                servers=servers,
                questions=questions,
                sequence=workload.sequence,
                schedule=schedule,
                workers=workers,
                sockets=sockets,
                spare_sockets=spare,
                timeout=config.timeout,
                tries=config.tries,
                interval=config.interval,
                late=config.timeout,
                edns=config.edns,
                expected=expected,
            )
            if config.calibrate:
                expected, texts = await self._calibrate(plan, Path(tmp))
                plan.expected = expected
            if expected is not None:
                result.unchecked = sum(1 for q in set(workload.sequence) if expected[q] < 0)
            if self._stopping:
                result.interrupted = True
                return result
            if self.on_start is not None:
                self.on_start(result)
            path = Path(tmp) / "plan.pickle"
            plan.save(path)
            examples = await self._run_workers(plan, path, result, schedule)
        for example in examples:
            q = int(example["question"])
            name, qtype = workload.questions[q]
            result.wrong.append((f"{name} {type_name(qtype)}", texts.get(q, "?"), example["got"]))
        return result

    def _settings(
        self, schedule: Schedule, workload: Workload, workers: int, sockets: int, spare: int
    ) -> dict[str, Any]:
        c = self.config
        return {
            "servers": c.servers,
            "mode": schedule.mode.value,
            "window": c.window if schedule.mode is Mode.CLOSED else None,
            "rate": c.rate,
            "ramp": list(c.ramp) if c.ramp else None,
            "step_seconds": c.step_seconds if c.ramp else None,
            "max_loss": c.max_loss if c.ramp else None,
            "max_p99_ms": c.max_p99 * 1000 if c.ramp else None,
            "duration": c.duration,
            "timeout": c.timeout,
            "tries": c.tries,
            "workers": workers,
            "sockets": sockets,
            "spare_sockets": spare,
            "interval": c.interval,
            "files": c.files,
            "questions": len(workload.questions),
            "pass_queries": len(workload.sequence),
            "types": [type_name(t) for t in c.types],
            "mix": {type_name(t): w for t, w in c.mix} if c.mix else None,
            "repeat_share": c.repeat_share,
            "replay": c.replay,
            "speed": c.speed if c.replay else None,
            "check": "zone" if c.zones else "calibration" if c.calibrate else None,
            "zones": c.zones,
            "edns": c.edns,
        }

    async def _calibrate(self, plan: Plan, tmp: Path) -> tuple[array[int], dict[int, str]]:
        """Ask every distinct question once at a low rate (3 tries): the answers a loaded
        run is compared with."""
        n = len(plan.questions)
        rate = self.config.calibrate_rate
        calibration = Plan(
            servers=plan.servers,
            questions=plan.questions,
            sequence=array("I", range(n)),
            schedule=Schedule(Mode.RATE, rate=rate),
            workers=1,
            sockets=plan.sockets,
            spare_sockets=plan.spare_sockets,
            timeout=plan.timeout,
            tries=3,
            interval=max(plan.interval, 1.0),
            late=plan.late,
            edns=plan.edns,
            calibrate=True,
        )
        path = tmp / "calibration.pickle"
        calibration.save(path)
        scratch = BenchResult(settings={}, machine={})
        done = await self._run_workers(calibration, path, scratch, calibration.schedule, True)
        found = {int(q): text for q, text in done[0].items()} if done else {}
        values = array("q", [-1] * n)
        for q, text in found.items():
            if not text.startswith("UNDECODABLE"):
                values[q] = digest(text)
        return values, found

    async def _run_workers(
        self,
        plan: Plan,
        path: Path,
        result: BenchResult,
        schedule: Schedule,
        calibrating: bool = False,
    ) -> list[Any]:
        """Start the workers, run them, merge their reports into `result`; the wrong-answer
        examples (or, calibrating, the outcomes found)."""
        procs = []
        try:
            for k in range(plan.workers):
                procs.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        "resolver.cli.bench.sender",
                        str(path),
                        str(k),
                        str(plan.workers),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        limit=1 << 28,
                    )
                )
            self._procs = procs
            for proc in procs:
                first = await _record(proc, _READY_TIMEOUT)
                if "ready" not in first:
                    raise ResolverError(first.get("error") or "a bench worker failed to start")
            start = time.monotonic() + _START_DELAY
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"go {start!r}\n".encode())
            if self._stopping:
                self.stop()
            merger = _Merger(self, plan, schedule, result, calibrating)
            outputs = await asyncio.gather(*(merger.follow(proc) for proc in procs))
            for proc in procs:
                await proc.wait()
        finally:
            self._procs = []
            for proc in procs:
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        errors = [out["error"] for out in outputs if "error" in out]
        if errors:
            raise BenchFailed(errors[0])
        result.interrupted = self._stopping and not merger.ramp_stopped
        result.last_reply = max(float(out.get("last_reply", 0.0)) for out in outputs)
        if calibrating:
            return [out.get("calibrated", {}) for out in outputs]
        merger.finish()
        return [example for out in outputs for example in out.get("examples", [])]


class _Merger:
    """Merges the workers' interval and step reports as they come."""

    def __init__(
        self,
        bench: Bench,
        plan: Plan,
        schedule: Schedule,
        result: BenchResult,
        quiet: bool,
    ) -> None:
        self.bench, self.plan, self.schedule, self.result = bench, plan, schedule, result
        self.quiet = quiet
        self.intervals: dict[int, list[Any]] = {}  # index -> [tally, reports, end]
        self.steps: dict[int, list[Any]] = {}
        self.next_interval = 0
        self.next_step = 0
        self.ramp_stopped = False
        self.failed = False
        self.client_steps = 0  # steps in a row that measured the client

    async def follow(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        while True:
            record = await _record(proc, None)
            if "interval" in record:
                self._interval(record)
            elif "step" in record:
                self._step(record)
            else:
                return record

    def _interval(self, record: dict[str, Any]) -> None:
        index = int(record["interval"])
        entry = self.intervals.setdefault(index, [Tally(), 0, None])
        entry[0].merge(Tally.from_json(record["tally"]))
        entry[1] += 1
        if "end" in record:
            end = float(record["end"])
            entry[2] = end if entry[2] is None else max(entry[2], end)
        self._flush(final=False)

    def _flush(self, final: bool) -> None:
        interval = self.plan.interval
        while self.next_interval in self.intervals:
            tally, reports, end = self.intervals[self.next_interval]
            if reports < self.plan.workers and not final:
                return
            del self.intervals[self.next_interval]
            begin = self.next_interval * interval
            stop = begin + interval if end is None else end
            self.result.intervals.append((begin, stop, tally))
            self.result.total.merge(tally)
            self.next_interval += 1
            if not self.quiet and self.bench.on_interval is not None:
                self.bench.on_interval(self.result)

    def _step(self, record: dict[str, Any]) -> None:
        index = int(record["step"])
        entry = self.steps.setdefault(index, [Tally(), 0])
        entry[0].merge(Tally.from_json(record["tally"]))
        entry[1] += 1
        while self.next_step in self.steps and self.steps[self.next_step][1] == self.plan.workers:
            tally = self.steps.pop(self.next_step)[0]
            rate = self.schedule.steps[self.next_step]
            step = Step(self.next_step, rate, tally, self.schedule.step_seconds)
            self.next_step += 1
            if not tally.counts["sent"] or self.failed:
                continue  # not run: the ramp had stopped
            step.verdict = self._judge(step)
            self.result.steps.append(step)
            self.client_steps = self.client_steps + 1 if step.verdict == "client" else 0
            if step.verdict == "ok":
                self.result.capacity = rate
            elif step.verdict != "client" or self.client_steps >= _CLIENT_STEPS:
                self.failed = True
                if not self.bench._stopping:
                    self.ramp_stopped = True
                    self.bench.stop()
            if self.bench.on_step is not None:
                self.bench.on_step(step)

    def _judge(self, step: Step) -> str:
        config = self.bench.config
        counts = step.tally.counts
        behind = counts["behind"]
        late = behind > _BEHIND_SHARE * counts["sent"] and behind >= _BEHIND_LEAST
        if late or counts["no_id"]:
            return "client"
        if step.loss > config.max_loss:
            return "loss"
        p99 = step.tally.latency.percentile(99)
        if p99 is not None and p99 > config.max_p99:
            return "p99"
        if not step.tally.counts["answered"]:
            return "loss"
        return "ok"

    def finish(self) -> None:
        self._flush(final=True)
        result = self.result
        if result.intervals:
            result.elapsed = result.intervals[-1][1]


async def _record(proc: asyncio.subprocess.Process, wait: float | None) -> dict[str, Any]:
    """The next JSON line of a worker (waiting at most `wait` seconds); its end is
    `{"error": ...}`."""
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), wait)
    except TimeoutError:
        return {"error": "a bench worker did not start in time"}
    if not line:
        code = await proc.wait()
        return {"error": f"a bench worker ended unexpectedly (exit status {code})"}
    data: dict[str, Any] = json.loads(line)
    return data


def _split(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    return host.strip("[]"), int(port)


def _wire_questions(workload: Workload) -> list[tuple[bytes, int]]:
    out = []
    for name, qtype in workload.questions:
        try:
            out.append((encode_name(name), qtype))
        except BadReply as exc:  # names the parser let through but DNS cannot carry
            raise ResolverError(f"cannot ask {name!r}: {exc}") from None
    return out


def _schedule(config: BenchConfig, workload: Workload) -> Schedule:
    mode = config.mode
    if mode is Mode.RAMP:
        assert config.ramp is not None
        low, high, step = config.ramp
        count = math.floor((high - low) / step + 1e-9) + 1
        rates = [low + i * step for i in range(count)]
        return Schedule(mode, steps=rates, step_seconds=config.step_seconds)
    if mode is Mode.REPLAY:
        return Schedule(
            mode, duration=config.duration, offsets=workload.offsets, period=workload.period
        )
    if mode is Mode.RATE:
        assert config.rate is not None
        return Schedule(mode, rate=config.rate, duration=config.duration)
    return Schedule(mode, window=config.window, duration=config.duration)


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def auto_workers(config: BenchConfig, servers: Sequence[tuple[str, int]]) -> int:
    """As many workers as CPUs here, half of them when the server runs here too (it needs
    the rest); an open-loop run only as many as its top rate needs."""
    cpus = usable_cpus()
    local = all(ip_address(host).is_loopback for host, _ in servers)
    workers = max(1, cpus // 2) if local else cpus
    top = _top_rate(config)
    if top is not None:
        workers = min(workers, max(1, math.ceil(top / WORKER_RATE)))
    return workers


def auto_sockets(config: BenchConfig, schedule: Schedule, workers: int) -> int:
    """Sockets per server and worker that give enough message ids for the queries that
    can be outstanding (or reserved after their timeout) at once."""
    top = _top_rate(config)
    if top is None or schedule.mode is Mode.CLOSED:
        need = config.window / workers + 1000
    else:
        need = top / workers * (config.timeout * config.tries + config.timeout)
    return max(1, min(_MAX_SOCKETS, math.ceil(need / _IDS_IN_USE)))


def _top_rate(config: BenchConfig) -> float | None:
    if config.ramp is not None:
        return max(config.ramp[0], config.ramp[1])
    return config.rate


def machine() -> dict[str, str]:
    """The machine the client ran on, for the report."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from resolver import __version__

    return {
        "cpu": model,
        "cpus": f"{os.cpu_count() or 1} ({usable_cpus()} usable by the client)",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "resolver": __version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
