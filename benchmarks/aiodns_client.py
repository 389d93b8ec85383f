"""Benchmark client: a plain aiodns loop, as an application would write it.

    python benchmarks/aiodns_client.py --nameserver 127.0.0.1:PORT --queries QUERIES \
        --expect EXPECT [--workers 1000]

N worker coroutines pull `(qname, qtype)` from a bounded `asyncio.Queue` (fed by one producer)
and await `DNSResolver.query_dns()`, on uvloop. The channel gets the settings the resolver's
c-ares engine uses (timeout 2 s, 3 tries, no search list, a 4 MiB receive buffer), so both
send exactly one query per line. Every answer is checked against EXPECT (see benchlib); one
JSON `ClientReport` line is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import aiodns
import pycares
from benchlib import (
    ClientReport,
    ask_all,
    canon,
    read_expectations,
    read_queries,
    run_client,
)

A, CNAME, PTR = 1, 5, 12
_ERRNO_STATUS = {
    pycares.errno.ARES_ENODATA: "NODATA",
    pycares.errno.ARES_ENOTFOUND: "NXDOMAIN",
    pycares.errno.ARES_ESERVFAIL: "SERVFAIL",
    pycares.errno.ARES_EREFUSED: "REFUSED",
    pycares.errno.ARES_ETIMEOUT: "TIMEOUT",
}


def outcome(qname: str, qtype: int, records: list[Any]) -> str:
    """The canonical outcome of a NOERROR reply: follow the CNAMEs from `qname`."""
    cname_of = {str(r.name).lower(): str(r.data.cname).lower() for r in records if r.type == CNAME}
    owner, chain = qname.lower(), list[str]()
    while owner in cname_of and len(chain) < 16:
        owner = cname_of[owner]
        chain.append(owner)
    answers = [
        str(r.data.addr) if qtype == A else str(r.data.dname)
        for r in records
        if r.type == qtype and str(r.name).lower() == owner
    ]
    return canon("NOERROR" if answers else "NODATA", answers, chain)


async def run(args: argparse.Namespace) -> ClientReport:
    expected = read_expectations(args.expect)
    queries = read_queries(args.queries)
    resolver = aiodns.DNSResolver(
        nameservers=[args.nameserver],
        loop=asyncio.get_running_loop(),
        timeout=2.0,
        tries=3,
        flags=pycares.ARES_FLAG_NOSEARCH,
        socket_receive_buffer_size=4 << 20,
    )

    async def ask(qname: str, qtype: str) -> str:
        try:
            result = await resolver.query_dns(qname, qtype)
        except aiodns.error.DNSError as exc:
            code = exc.args[0] if exc.args else None
            return canon(_ERRNO_STATUS.get(code, "ERROR"))
        return outcome(qname, PTR if qtype == "PTR" else A, result.answer)

    try:
        return await ask_all(queries, expected, args.workers, ask)
    finally:
        await resolver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nameserver", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--queries", type=Path, required=True, help="`name TYPE` per line")
    parser.add_argument("--expect", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1000)
    args = parser.parse_args()
    if not args.nameserver.startswith(("127.", "[::1]")):
        parser.error("benchmark clients only ask a loopback server")
    run_client(run(args))


if __name__ == "__main__":
    main()
