"""Benchmark reference: about the least a Python client can spend per name.

    python benchmarks/floor_client.py --nameserver 127.0.0.1:PORT --queries QUERIES \
        --rcodes RCODES [--window 1000]

Not a resolver: one connected UDP socket, no event loop, no name checks, no decoding and
no output. The query packets are built from QUERIES (`name TYPE` per line) first; then a
plain loop keeps up to WINDOW of them in flight (epoll, non-blocking send and recv) and
reads only the id and RCODE of each reply, checked against RCODES (one per line). A lost
reply ends the run with an error rather than being retried. One JSON `ClientReport` line
is printed at the end.

Beside dnsperf, it tells how much of a Python resolver's cost per name is the system calls
every client makes, and how much is its own work on each name.
"""

from __future__ import annotations

import argparse
import select
import socket
import struct
import sys
import time
from collections import Counter
from pathlib import Path

from benchlib import ClientReport, read_queries

TYPES = {"A": 1, "AAAA": 28, "PTR": 12}
RCODES = {0: "NOERROR", 3: "NXDOMAIN"}
STALL = 2.0  # seconds without any reply: a reply was lost


def packet(qid: int, qname: str, qtype: str) -> bytes:
    """A query with RD set and one question, no OPT record."""
    labels = b"".join(bytes([len(label)]) + label.encode() for label in qname.split("."))
    return (
        struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", TYPES[qtype], 1)
    )


def run(args: argparse.Namespace) -> ClientReport:
    queries = read_queries(args.queries)
    want = args.rcodes.read_text().split()
    packets = [packet(i & 0xFFFF, qname, qtype) for i, (qname, qtype) in enumerate(queries)]
    host, _, port = args.nameserver.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)
    send, recv = sock.send, sock.recv
    pending: dict[int, int] = {}  # id -> index of the query
    statuses: Counter[str] = Counter()
    correct = sent = 0
    total = len(packets)
    started = time.perf_counter()
    while sent < total or pending:
        while sent < total and len(pending) < args.window:
            pending[sent & 0xFFFF] = sent
            send(packets[sent])
            sent += 1
        if not poller.poll(STALL):
            sys.exit(f"floor_client: {len(pending)} replies lost (no retries here)")
        while True:
            try:
                reply = recv(65535)
            except BlockingIOError:
                break
            index = pending.pop((reply[0] << 8) | reply[1], None)
            if index is None:
                continue
            status = RCODES.get(reply[3] & 0x0F, "ERROR")
            statuses[status] += 1
            if status == want[index]:
                correct += 1
    return ClientReport(
        names=total,
        correct=correct,
        statuses=dict(statuses),
        elapsed=time.perf_counter() - started,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nameserver", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--queries", type=Path, required=True, help="`name TYPE` per line")
    parser.add_argument("--rcodes", type=Path, required=True, help="one RCODE per line")
    parser.add_argument("--window", type=int, default=1000)
    args = parser.parse_args()
    if not args.nameserver.startswith("127."):
        parser.error("benchmark clients only ask a loopback server")
    if not 1 <= args.window <= 32768:
        parser.error("--window must be 1 to 32768 (ids are reused after 65536 queries)")
    run(args).emit()


if __name__ == "__main__":
    main()
