"""One run on several processes: each worker resolves a share of the input lines (its own
loop, sockets and engines) and streams whole rows back; the parent merges them into one
output and one summary. Nothing is lost or doubled: every line belongs to one share."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Sequence

from resolver.cli.run import Summary
from resolver.writers import RowWriter

__all__ = ["SUMMARY_TAG", "run_workers", "worker_summary"]

#: A worker's last stderr line: this tag, then its summary as JSON.
SUMMARY_TAG = b"resolver-worker-summary "
_FLUSH_EVERY = 0.5


def worker_summary(summary: Summary) -> str:
    """The line a worker prints on stderr for its parent to merge."""
    fields = {
        "counts": dict(summary.counts),
        "interrupted": summary.interrupted,
        "replies": summary.replies,
    }
    return SUMMARY_TAG.decode() + json.dumps(fields)


async def run_workers(
    commands: Sequence[Sequence[str]], writer: RowWriter
) -> tuple[Summary, list[int]]:
    """Run one worker per command; their rows go to `writer`, their other stderr lines to
    ours. SIGINT/SIGTERM are passed on, so each worker finishes what it has in flight.
    Returns the merged summary and the workers' exit codes."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    summary = Summary()
    last_flush = [started]
    procs = [
        await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for command in commands
    ]

    def forward(signum: int) -> None:
        summary.interrupted = True
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signum)

    async def rows(proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        pending = b""
        while chunk := await proc.stdout.read(1 << 16):
            data = pending + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                writer.write_rows(data[:cut])
            pending = data[cut:]
            now = time.perf_counter()
            if now - last_flush[0] >= _FLUSH_EVERY:
                writer.flush()
                last_flush[0] = now
        # A worker only ever writes whole rows; a tail without its newline means it was
        # killed mid-write, and half a row is not written on.

    async def messages(proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            if line.startswith(SUMMARY_TAG):
                fields = json.loads(line[len(SUMMARY_TAG) :])
                summary.counts.update(fields["counts"])
                summary.interrupted |= fields["interrupted"]
                summary.replies += fields["replies"]
            else:
                sys.stderr.buffer.write(line)
                sys.stderr.flush()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, forward, signum)
    try:
        await asyncio.gather(*(rows(p) for p in procs), *(messages(p) for p in procs))
        codes = [await proc.wait() for proc in procs]
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    writer.flush()
    summary.elapsed = time.perf_counter() - started
    return summary, codes
