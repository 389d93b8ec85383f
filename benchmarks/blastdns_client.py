"""Benchmark client: blastdns (a Rust-core Python DNS library), through its own batch API.

    python benchmarks/blastdns_client.py --nameserver 127.0.0.1:PORT --queries QUERIES \
        --expect EXPECT [--inflight 250]

One `blastdns.Client([ns], ClientConfig(...))` with `max_concurrency` and
`max_inflight_per_resolver` both set to `--inflight` (its own default caps one resolver at 2
queries in flight), its answer cache off (every name is asked once anyway) and every other
setting at its default (adaptive pacing on, 1 s request timeout, 10 retries).
`Client.resolve_batch_full()` takes one record type per batch, so the A questions go as one
batch and then the PTR questions as another. Every answer is checked against EXPECT (see
benchlib); one JSON `ClientReport` line is printed at the end.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchlib import ClientReport, canon, digest, read_expectations, read_queries, run_client

_RCODES = {
    "NoError": "NOERROR",
    "NXDomain": "NXDOMAIN",
    "ServFail": "SERVFAIL",
    "Refused": "REFUSED",
}


def _rdata(record: Any, rtype: str) -> str | None:
    value = record.rdata.get(rtype)
    return None if value is None else str(value)


def outcome(qname: str, qtype: str, result: Any) -> str:
    """The canonical outcome of one blastdns result (a DNSResult or a DNSError)."""
    if not hasattr(result, "response"):
        text = str(getattr(result, "error", result)).lower()
        return canon("TIMEOUT" if "timeout" in text or "timed out" in text else "ERROR")
    response = result.response
    status = _RCODES.get(response.header.response_code, response.header.response_code.upper())
    if status != "NOERROR":
        return canon(status)
    cname_of: dict[str, str] = {}
    for record in response.answers:
        target = _rdata(record, "CNAME")
        if target is not None:
            cname_of[record.name_labels.rstrip(".").lower()] = target.rstrip(".").lower()
    owner, chain = qname.rstrip(".").lower(), list[str]()
    while owner in cname_of and len(chain) < 16:
        owner = cname_of[owner]
        chain.append(owner)
    answers = [
        value
        for record in response.answers
        if record.name_labels.rstrip(".").lower() == owner
        and (value := _rdata(record, qtype)) is not None
    ]
    return canon("NOERROR" if answers else "NODATA", answers, chain)


async def run(args: argparse.Namespace) -> ClientReport:
    # Imported by name: blastdns ships no type information (and is an optional peer).
    blastdns = importlib.import_module("blastdns")
    expected = read_expectations(args.expect)
    queries = read_queries(args.queries)
    config = blastdns.ClientConfig(
        max_concurrency=args.inflight,
        max_inflight_per_resolver=args.inflight,
        cache_capacity=0,
    )
    client = blastdns.Client([args.nameserver], config)
    index: dict[tuple[str, str], int] = {}
    batches: dict[str, list[str]] = {}
    for number, (qname, qtype) in enumerate(queries):
        index[(qname.lower(), qtype)] = number
        batches.setdefault(qtype, []).append(qname)
    statuses: Counter[str] = Counter()
    correct = 0
    started = time.perf_counter()
    for qtype, hosts in batches.items():
        async for host, result in client.resolve_batch_full(hosts, qtype):
            found = index.get((str(host).rstrip(".").lower(), qtype))
            if found is None:
                statuses["UNKNOWN"] += 1
                continue
            got = outcome(str(host), qtype, result)
            statuses[got.split("|", 1)[0]] += 1
            if digest(got) == expected[found]:
                correct += 1
    return ClientReport(
        names=len(queries),
        correct=correct,
        statuses=dict(statuses),
        elapsed=time.perf_counter() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nameserver", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--queries", type=Path, required=True, help="`name TYPE` per line")
    parser.add_argument("--expect", type=Path, required=True)
    parser.add_argument("--inflight", type=int, default=250)
    args = parser.parse_args()
    if not args.nameserver.startswith(("127.", "[::1]")):
        parser.error("benchmark clients only ask a loopback server")
    run_client(run(args))


if __name__ == "__main__":
    main()
