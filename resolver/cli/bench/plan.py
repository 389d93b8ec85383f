"""What the parent hands every worker: the questions, the schedule and the settings.

Queries are numbered in one global order; worker `k` of `n` sends numbers `k`, `k + n`,
`k + 2n`, ... so the workers together keep the whole schedule. Query `j` asks question
`sequence[j % len(sequence)]` (the list asked again and again); in open loop it is due at
the time `Schedule.dues` gives it, in closed loop as soon as the window has room.
"""

from __future__ import annotations

import enum
import itertools
import pickle
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Mode", "Plan", "Schedule"]


class Mode(enum.Enum):
    """How queries are paced."""

    CLOSED = "closed"  #: a fixed number outstanding: the next goes when one ends
    RATE = "rate"  #: open loop, `rate` per second on a fixed schedule
    RAMP = "ramp"  #: open loop, rising step by step
    REPLAY = "replay"  #: open loop, at the times of the query log


@dataclass
class Schedule:
    """When each query is due, and when sending ends."""

    mode: Mode
    window: int = 100  #: CLOSED: queries outstanding, over all workers
    rate: float = 0.0  #: RATE: queries per second
    #: RAMP: the rate of each step; each lasts `step_seconds`.
    steps: list[float] = field(default_factory=list)
    step_seconds: float = 0.0
    #: No query is due at or after this many seconds (None: one pass of the list).
    duration: float | None = None
    #: REPLAY: seconds from a pass's start per query, and a pass's length.
    offsets: array[float] | None = None
    period: float = 0.0
    #: RAMP: the first query number of each step, and the total at the end.
    firsts: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        firsts = [0]
        for rate in self.steps:
            firsts.append(firsts[-1] + max(1, round(rate * self.step_seconds)))
        self.firsts = firsts

    @property
    def open_loop(self) -> bool:
        """Whether queries go on a schedule, whatever the replies do."""
        return self.mode is not Mode.CLOSED

    def queries(self, pass_length: int) -> int | None:
        """How many queries the run sends, if known in advance (None: until the time is up)."""
        if self.mode is Mode.RAMP:
            return self.firsts[-1]
        if self.duration is not None:
            if self.mode is Mode.RATE:
                return max(0, _ceil(self.duration * self.rate))
            return None
        return pass_length

    def dues(self, k: int, workers: int, pass_length: int) -> Iterator[tuple[int, float]]:
        """Open loop: worker `k`'s query numbers and when each is due (seconds after the
        start), in order, to the end of the schedule."""
        limit = self.queries(pass_length)
        if self.mode is Mode.RAMP:
            for step, rate in enumerate(self.steps):
                first, end = self.firsts[step], self.firsts[step + 1]
                t0 = step * self.step_seconds
                for number in range(first + (k - first) % workers, end, workers):
                    yield number, t0 + (number - first) / rate
            return
        numbers = itertools.count(k, workers) if limit is None else range(k, limit, workers)
        if self.mode is Mode.RATE:
            rate = self.rate
            for number in numbers:
                yield number, number / rate
        elif self.mode is Mode.REPLAY:
            assert self.offsets is not None
            offsets, period, duration = self.offsets, self.period, self.duration
            for number in numbers:
                lap, i = divmod(number, pass_length)
                due = lap * period + offsets[i]
                if duration is not None and due >= duration:
                    return
                yield number, due


def _ceil(x: float) -> int:
    return int(-(-x // 1))


@dataclass
class Plan:
    """Everything a worker needs, written by the parent to a file the worker reads."""

    servers: list[tuple[str, int]]
    #: Distinct questions: the name in wire form and the type code.
    questions: list[tuple[bytes, int]]
    sequence: array[int]
    schedule: Schedule
    workers: int = 1
    #: Sockets per server and worker that queries go round (each its own source port and
    #: 65,536 message ids), and more used only when those have no free id.
    sockets: int = 1
    spare_sockets: int = 0
    timeout: float = 2.0
    tries: int = 1
    interval: float = 1.0
    #: How long an attempt's message id stays reserved after its timeout, so that a late
    #: reply is counted as late (and not taken for the answer to a later query).
    late: float = 2.0
    edns: int | None = 1232
    #: Per question, the CRC-32 of the expected outcome (see `expect.outcome`), or -1
    #: where it is unknown; None: answers are not checked.
    expected: array[int] | None = None
    #: Calibration: record every question's outcome instead of checking it.
    calibrate: bool = False

    def save(self, path: Path) -> None:
        """Write the plan for the workers."""
        with path.open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: Path) -> Plan:
        """What `save` wrote (a file of this run's parent only)."""
        with path.open("rb") as f:
            plan = pickle.load(f)  # noqa: S301 - written by our own parent process
        if not isinstance(plan, cls):
            raise TypeError(f"{path} holds no bench plan")
        return plan
