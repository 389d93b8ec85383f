"""What a benchmark counts: a latency histogram and the tally of one interval or step.

Workers fill these in their hot loop and send them to the parent as JSON; the parent
merges them. Latencies go to a log-linear histogram of microseconds: exact below 128 µs,
then 64 buckets per power of two (each within 1.6% of its values), so a percentile of any
number of queries from any number of workers costs the same small, mergeable array.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BUCKETS", "PERCENTILES", "Histogram", "Tally", "bucket", "bucket_bounds"]

SUB = 64  #: buckets per power of two
BUCKETS = SUB * 36  #: up to 2**35 µs (9.5 hours): more than any timeout
#: The percentiles a report gives, with their labels.
PERCENTILES = ((50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9"))


def bucket(us: int) -> int:
    """The bucket of a latency of `us` microseconds (the hot loop inlines this)."""
    if us < 2 * SUB:
        return max(us, 0)
    e = us.bit_length() - 7
    return min((e << 6) + (us >> e), BUCKETS - 1)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest microseconds that fall in bucket `index`."""
    if index < 2 * SUB:
        return index, index
    e = (index >> 6) - 1
    m = index - (e << 6)
    return m << e, ((m + 1) << e) - 1


@dataclass
class Histogram:
    """Counts of latencies per bucket, and the largest latency seen (in seconds)."""

    counts: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    max: float = 0.0

    @property
    def total(self) -> int:
        """How many latencies were counted."""
        return sum(self.counts)

    def add(self, seconds: float) -> None:
        """Count one latency (outside the hot loop)."""
        self.counts[bucket(int(seconds * 1e6))] += 1
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        """Add `other`'s counts to these."""
        mine = self.counts
        for i, n in enumerate(other.counts):
            if n:
                mine[i] += n
        self.max = max(self.max, other.max)

    def percentile(self, p: float) -> float | None:
        """The `p`-th percentile in seconds (nearest rank, as the middle of its bucket and
        never above the maximum), or None without data."""
        total = self.total
        if not total:
            return None
        rank = max(1, -(-p * total // 100))
        if rank >= total:
            return self.max
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                lo, hi = bucket_bounds(i)
                return min((lo + hi) / 2e6, self.max)
        return self.max  # pragma: no cover - the counts add up to total

    def summary(self) -> dict[str, float | None]:
        """The report's percentiles and the maximum, in milliseconds (None: no data)."""
        out: dict[str, float | None] = {}
        for p, label in PERCENTILES:
            value = self.percentile(p)
            out[label] = None if value is None else round(value * 1000, 4)
        out["max"] = round(self.max * 1000, 4) if self.total else None
        return out

    def bins(self) -> list[tuple[float, float, int]]:
        """The buckets in use as (low ms, high ms, count)."""
        out = []
        for i, n in enumerate(self.counts):
            if n:
                lo, hi = bucket_bounds(i)
                out.append((lo / 1000, (hi + 1) / 1000, n))
        return out

    def to_json(self) -> dict[str, Any]:
        """A compact form for a worker's report: the buckets in use, and the maximum."""
        return {"b": {str(i): n for i, n in enumerate(self.counts) if n}, "max": self.max}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Histogram:
        """What `to_json` wrote."""
        hist = cls(max=float(data["max"]))
        for i, n in data["b"].items():
            hist.counts[int(i)] = int(n)
        return hist


#: The counters of a `Tally`, in report order.
COUNTERS = (
    "sent",  # queries sent for the first time
    "retried",  # attempts sent again after a timeout (--tries above 1)
    "answered",  # queries whose reply came within an attempt's timeout
    "lost",  # queries without a reply after their last attempt's timeout
    "late",  # replies that came after their attempt's timeout (the query is lost or retried)
    "unexpected",  # replies to no query sent (unknown id, another question, another source)
    "truncated",  # answered with TC set (no TCP retry in a load test)
    "checked",  # answers compared with the expected ones
    "wrong",  # answers that differ from the expected ones
    "send_full",  # sends the kernel refused for a full socket buffer (tried again later)
    "no_id",  # queries not sent: every message id of every socket was in use
    "unreachable",  # ICMP port-unreachable errors (nothing listening at the server's port)
    "send_errors",  # queries whose send failed (EPERM, no route...): not sent
    "behind",  # ramp steps: queries sent more than 10 ms after their scheduled time
)


@dataclass
class Tally:
    """What happened in one interval (or ramp step): counts, rcodes, latencies per server.

    Counts are by when things happened: a reply in the interval it came, a loss in the
    interval its timeout struck. A ramp step counts its queries by their scheduled time.
    """

    counts: Counter[str] = field(default_factory=Counter)
    rcodes: Counter[str] = field(default_factory=Counter)
    latency: Histogram = field(default_factory=Histogram)
    #: How late the sender was on the schedule (open loop), per query sent.
    lag: Histogram = field(default_factory=Histogram)
    #: Per nameserver: sent, answered, lost.
    servers: dict[str, list[int]] = field(default_factory=dict)
    #: CPU seconds the workers spent, and wall seconds they ran (their sum).
    cpu: float = 0.0
    wall: float = 0.0

    def merge(self, other: Tally) -> None:
        """Add `other` (another worker's, or another interval's) to this one."""
        self.counts.update(other.counts)
        self.rcodes.update(other.rcodes)
        self.latency.merge(other.latency)
        self.lag.merge(other.lag)
        for server, values in other.servers.items():
            mine = self.servers.setdefault(server, [0, 0, 0])
            for i, v in enumerate(values):
                mine[i] += v
        self.cpu += other.cpu
        self.wall += other.wall

    def to_json(self) -> dict[str, Any]:
        """A worker's report of this tally."""
        return {
            "counts": {k: v for k, v in self.counts.items() if v},
            "rcodes": dict(self.rcodes),
            "latency": self.latency.to_json(),
            "lag": self.lag.to_json(),
            "servers": self.servers,
            "cpu": self.cpu,
            "wall": self.wall,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        """What `to_json` wrote."""
        return cls(
            counts=Counter(data["counts"]),
            rcodes=Counter(data["rcodes"]),
            latency=Histogram.from_json(data["latency"]),
            lag=Histogram.from_json(data["lag"]),
            servers={k: list(v) for k, v in data["servers"].items()},
            cpu=float(data["cpu"]),
            wall=float(data["wall"]),
        )

    def public(self, seconds: float) -> dict[str, Any]:
        """This tally for the JSON output and the report: counts, rates over `seconds`,
        rcodes, latency percentiles and histogram, send lag, per server, CPU share."""
        counts = {name: self.counts[name] for name in COUNTERS}
        rate = (lambda n: round(n / seconds, 1)) if seconds > 0 else (lambda n: 0.0)
        return {
            **counts,
            "sent_per_s": rate(counts["sent"]),
            "answered_per_s": rate(counts["answered"]),
            "rcodes": dict(sorted(self.rcodes.items())),
            "latency_ms": self.latency.summary(),
            "histogram_ms": [list(b) for b in self.latency.bins()],
            "lag_ms": self.lag.summary(),
            "servers": {
                server: {"sent": s, "answered": a, "lost": lost}
                for server, (s, a, lost) in self.servers.items()
            },
            "cpu_share": round(self.cpu / self.wall, 3) if self.wall > 0 else None,
        }
