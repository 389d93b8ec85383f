"""Benchmark client: dnspython's asyncio stub resolver.

    python benchmarks/dnspython_client.py --server 127.0.0.1 --port PORT --queries QUERIES \
        --expect EXPECT [--limit 40000] [--workers 1000]

`dns.asyncresolver.Resolver(configure=False)` (so /etc/resolv.conf is never read) with
nameservers ["127.0.0.1"] and the benchmark's port, no cache, no search list; N worker
coroutines pull the first LIMIT `(qname, qtype)` lines from a bounded queue, on uvloop.
dnspython opens a socket per query, so it is slow: a 40,000-line prefix of the same
workload gives a stable rate. Every answer is checked against EXPECT; one JSON
`ClientReport` line is printed at the end.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver
from benchlib import (
    ClientReport,
    ask_all,
    canon,
    read_expectations,
    read_queries,
    run_client,
)


def outcome(qname: str, qtype: str, answer: dns.resolver.Answer) -> str:
    """The canonical outcome of a NOERROR reply: follow the CNAMEs from `qname`."""
    wanted = dns.rdatatype.from_text(qtype)
    rrsets = answer.response.answer
    cname_of = {
        rrset.name.to_text().rstrip(".").lower(): rdata.target.to_text().rstrip(".").lower()
        for rrset in rrsets
        if rrset.rdtype == dns.rdatatype.CNAME
        for rdata in rrset
    }
    owner, chain = qname.lower(), list[str]()
    while owner in cname_of and len(chain) < 16:
        owner = cname_of[owner]
        chain.append(owner)
    answers = [
        rdata.to_text()
        for rrset in rrsets
        if rrset.rdtype == wanted and rrset.name.to_text().rstrip(".").lower() == owner
        for rdata in rrset
    ]
    return canon("NOERROR" if answers else "NODATA", answers, chain)


async def run(args: argparse.Namespace) -> ClientReport:
    expected = read_expectations(args.expect)
    queries = read_queries(args.queries, args.limit)
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [args.server]
    resolver.port = args.port
    resolver.timeout = 2.0
    resolver.lifetime = 6.0
    resolver.cache = None

    async def ask(qname: str, qtype: str) -> str:
        try:
            answer = await resolver.resolve(qname, qtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return canon("NXDOMAIN")
        except dns.resolver.LifetimeTimeout:
            return canon("TIMEOUT")
        except dns.exception.DNSException:
            return canon("ERROR")
        return outcome(qname, qtype, answer)

    return await ask_all(queries, expected, args.workers, ask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--queries", type=Path, required=True, help="`name TYPE` per line")
    parser.add_argument("--expect", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=40_000)
    parser.add_argument("--workers", type=int, default=1000)
    args = parser.parse_args()
    if args.server not in ("127.0.0.1", "::1"):
        parser.error("benchmark clients only ask a loopback server")
    run_client(run(args))


if __name__ == "__main__":
    main()
