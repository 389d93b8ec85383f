"""What a benchmark asks: input lines to the questions and the order they are sent in.

A line is one of

- `NAME`: asked for the types of `-t` (each of them) or of `--mix` (one, by share);
  an IP address is asked PTR, as `resolver resolve` does;
- `NAME TYPE` (dnsperf's data files): that type;
- `TIME NAME [TYPE]`: the same at TIME seconds (any origin: Unix time, or from 0);
- a BIND query log line (`DD-Mon-YYYY HH:MM:SS.mmm ... query: NAME IN TYPE ...`) or an
  Unbound one (`[UNIXTIME] unbound[...] info: CLIENT NAME. TYPE IN`).

Blank lines and `#` comments are skipped; a line that cannot be asked is counted and the
first few are named. One pass of the workload is the lines in order, each asked once per
type; `repeat_share` inserts repeats of names asked before (a recursive resolver's cache
hits) so that they make up that share of the pass. The pass is deterministic: every
worker computes the same one and sends its share of it.
"""

from __future__ import annotations

import random
import re
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from resolver.model import InvalidInput, RecordType, ResolverError
from resolver.names import parse_line

__all__ = [
    "Workload",
    "parse_mix",
    "read_workload",
    "type_code",
    "type_name",
]

#: Types a log may hold beyond `RecordType`: sent as they are, their answers not checked.
_EXTRA_TYPES = {
    "HINFO": 13, "NAPTR": 35, "DS": 43, "SSHFP": 44, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48,
    "TLSA": 52, "SVCB": 64, "HTTPS": 65, "SPF": 99, "ANY": 255, "URI": 256,
}  # fmt: skip
_TYPE_CODES = {t.name: t.value for t in RecordType} | _EXTRA_TYPES
_TYPE_NAMES = {code: name for name, code in _TYPE_CODES.items()}
_NAMED_BAD_LINES = 5

_BIND = re.compile(r"query: (\S+) (\S+) (\S+)")
_BIND_TIME = re.compile(r"^(\d{1,2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}:\d{2}(?:\.\d+)?)")
_UNBOUND = re.compile(r"^\[(\d+(?:\.\d+)?)\] unbound\[[^\]]*\] info: \S+ (\S+) (\S+) (\S+)\s*$")
_COMMENT = re.compile(r"(?:^|\s)#")


def type_code(text: str) -> int:
    """`"AAAA"` -> 28; also `TYPE65`-style names; raises ValueError naming the known ones."""
    upper = text.strip().upper()
    if upper in _TYPE_CODES:
        return _TYPE_CODES[upper]
    if upper.startswith("TYPE") and upper[4:].isdigit() and 0 < int(upper[4:]) < 65536:
        return int(upper[4:])
    raise ValueError(f"unknown record type {text!r} (known: {', '.join(_TYPE_CODES)}, TYPEnnn)")


def type_name(code: int) -> str:
    """28 -> `"AAAA"`; an unnamed type as `TYPEnnn`."""
    return _TYPE_NAMES.get(code, f"TYPE{code}")


def parse_mix(text: str) -> list[tuple[int, int]]:
    """`"A=70,AAAA=20,MX=10"` -> [(type code, weight)]; raises ValueError."""
    mix: list[tuple[int, int]] = []
    for part in text.split(","):
        name, eq, weight = part.strip().partition("=")
        if not eq or not weight.strip().isdigit() or int(weight) <= 0:
            raise ValueError(f"expected TYPE=WEIGHT with a positive whole weight: {part!r}")
        mix.append((type_code(name), int(weight)))
    if len({code for code, _ in mix}) != len(mix):
        raise ValueError(f"a type is named twice in {text!r}")
    return mix


@dataclass
class Workload:
    """The distinct questions and one pass of the load: which question each query asks
    and, when replaying a log's timing, when."""

    #: Distinct (normalized name, type code), in order of first appearance.
    questions: list[tuple[str, int]] = field(default_factory=list)
    #: One pass: the index in `questions` of each query, in sending order.
    sequence: array[int] = field(default_factory=lambda: array("I"))
    #: With the original timing: seconds from the pass's start, per query (non-decreasing).
    offsets: array[float] | None = None
    #: With the original timing: a pass's length (when the next one starts, looping).
    period: float = 0.0
    #: Lines skipped as unusable, and the messages of the first few.
    bad_lines: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Line:
    name: str
    types: list[int]
    time: float | None
    typed: bool  # the line named its type (or is an IP address): --mix leaves it


def read_workload(
    files: Sequence[str],
    *,
    types: Sequence[int] = (RecordType.A.value,),
    mix: Sequence[tuple[int, int]] | None = None,
    repeat_share: float = 0.0,
    timed: bool = False,
    speed: float = 1.0,
    seed: int = 0,
) -> Workload:
    """Read the lines of `files` (`-`: stdin) into a workload; raises ResolverError for an
    unreadable file, an input with nothing to ask, or (with `timed`) a line without a time."""
    if not 0.0 <= repeat_share < 1.0:
        raise ResolverError(f"--repeat-share must be at least 0 and below 1: {repeat_share}")
    work = Workload()
    index: dict[tuple[str, int], int] = {}
    times: list[float] = []
    chooser = _Mixer(mix) if mix else None
    for path, number, text in _lines(files):
        try:
            line = _parse(text, number, types)
        except ValueError as exc:
            work.bad_lines += 1
            if work.bad_lines <= _NAMED_BAD_LINES:
                work.warnings.append(f"{path}:{number}: {exc} (skipped)")
            continue
        if line is None:
            continue
        if timed and line.time is None:
            raise ResolverError(
                f"{path}:{number}: no time on this line: --replay-timing needs a time on "
                "every line (TIME NAME [TYPE], or a BIND or Unbound query log)"
            )
        asked = line.types
        if chooser is not None and not line.typed:
            asked = [chooser.next()]
        for qtype in asked:
            key = (line.name, qtype)
            found = index.get(key)
            if found is None:
                found = index[key] = len(work.questions)
                work.questions.append(key)
            work.sequence.append(found)
            if timed:
                times.append(line.time or 0.0)
    if work.bad_lines > _NAMED_BAD_LINES:
        work.warnings.append(f"{work.bad_lines - _NAMED_BAD_LINES:,} more bad lines skipped")
    if not work.sequence:
        skipped = f" ({work.bad_lines:,} bad lines skipped)" if work.bad_lines else ""
        raise ResolverError(f"nothing to ask: the input holds no usable line{skipped}")
    if timed:
        work.offsets, work.period = _offsets(times, speed)
    if repeat_share:
        work.sequence = _with_repeats(work.sequence, repeat_share, random.Random(seed))
    return work


def _lines(files: Sequence[str]) -> Iterable[tuple[str, int, str]]:
    for path in files:
        try:
            stream: TextIO = (
                sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
            )
        except OSError as exc:
            raise ResolverError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            for number, text in enumerate(stream, 1):
                yield ("stdin" if path == "-" else path), number, text.rstrip("\r\n")
        except OSError as exc:
            raise ResolverError(f"cannot read {path}: {exc.strerror or exc}") from exc
        finally:
            if stream is not sys.stdin:
                stream.close()


class _Mixer:
    """Types by share, deterministically: smooth weighted round robin (every cycle of
    sum(weights) queries holds each type exactly its weight's times)."""

    def __init__(self, mix: Sequence[tuple[int, int]]) -> None:
        self.codes = [code for code, _ in mix]
        self.weights = [weight for _, weight in mix]
        self.total = sum(self.weights)
        self.current = [0] * len(mix)

    def next(self) -> int:
        current = self.current
        for i, weight in enumerate(self.weights):
            current[i] += weight
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= self.total
        return self.codes[best]


def _parse(text: str, number: int, types: Sequence[int]) -> _Line | None:
    """One input line -> its name, types and time (None for a blank or comment line);
    raises ValueError saying why a line cannot be asked."""
    body = text.strip()
    if comment := _COMMENT.search(body):
        body = body[: comment.start()].rstrip()
    if not body:
        return None
    when: float | None = None
    qtype: str | None = None
    if (bind := _BIND.search(body)) is not None:
        name, qclass, qtype = bind.groups()
        if stamp := _BIND_TIME.match(body):
            when = _bind_time(stamp.group(1))
    elif (unbound := _UNBOUND.match(body)) is not None:
        stamp_text, name, qtype, qclass = unbound.groups()
        when = float(stamp_text)
    else:
        qclass = "IN"
        fields = body.split()
        if len(fields) > 3:
            raise ValueError(f"expected NAME, NAME TYPE or TIME NAME [TYPE]: {body[:60]!r}")
        if len(fields) >= 2 and _is_time(fields[0]) and not _is_type(fields[1]):
            when = float(fields[0])
            fields = fields[1:]
        name = fields[0]
        if len(fields) == 2:
            qtype = fields[1]
            if not _is_type(qtype):
                raise ValueError(f"{qtype[:20]!r} is not a record type (NAME TYPE): {body[:60]!r}")
        elif len(fields) == 3:
            raise ValueError(f"expected NAME, NAME TYPE or TIME NAME [TYPE]: {body[:60]!r}")
    if qclass.upper() != "IN":
        raise ValueError(f"class {qclass} is not asked (IN only)")
    parsed = parse_line(name, number, [RecordType.A])
    if not parsed:
        raise ValueError(f"empty name: {name[:60]!r}")
    query = parsed[0]
    if isinstance(query, InvalidInput):
        raise ValueError(f"{query.error}: {name[:60]!r}")
    if query.address is not None:  # an IP literal: its PTR
        return _Line(query.name, [RecordType.PTR.value], when, True)
    return _Line(query.name, [type_code(qtype)] if qtype else list(types), when, qtype is not None)


def _is_time(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.count(".") <= 1


def _is_type(text: str) -> bool:
    try:
        type_code(text)
    except ValueError:
        return False
    return True


def _bind_time(text: str) -> float:
    fmt = "%d-%b-%Y %H:%M:%S.%f" if "." in text else "%d-%b-%Y %H:%M:%S"
    return datetime.strptime(text, fmt).timestamp()  # local time: offsets only


def _offsets(times: list[float], speed: float) -> tuple[array[float], float]:
    """Seconds from the first query, divided by `speed`, never going back; and the pass's
    length: the last offset plus the mean gap between queries."""
    first = times[0]
    offsets = array("d")
    last = 0.0
    for t in times:
        last = max(last, (t - first) / speed)
        offsets.append(last)
    gap = last / (len(times) - 1) if len(times) > 1 else 1.0 / speed
    return offsets, last + (gap if gap > 0 else 1e-3)


def _with_repeats(fresh: array[int], share: float, rng: random.Random) -> array[int]:
    """`fresh` in order with repeats of earlier entries mixed in, evenly, to make up
    `share` of the result; each repeat picks an earlier query at random."""
    total = round(len(fresh) / (1.0 - share))
    out = array("I")
    repeats = 0
    taken = 0
    for position in range(total):
        due = int(share * (position + 1)) > repeats
        if taken < len(fresh) and (not due or not out):
            out.append(fresh[taken])
            taken += 1
        else:
            out.append(out[rng.randrange(len(out))])
            repeats += 1
    return out
