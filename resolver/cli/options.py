"""The settings of one `resolve` run (also `demo` and `--dask`), parsed once from the
command line into a typed value: the one place where a subcommand's missing flags get
their defaults, and where the settings become a `Resolver` or a worker's command line."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from resolver.core import Fallback, Resolver
from resolver.model import RecordType
from resolver.writers import format_for

__all__ = ["RunOptions"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Every setting of a run, typed (names as the flags')."""

    files: tuple[str, ...]
    types: tuple[RecordType, ...]
    nameservers: tuple[str, ...] | None
    concurrency: int
    timeout: float
    tries: int | None  # None: the default, adaptive (see `Resolver`)
    qps: float | None
    deadline: float | None
    fallback: str
    engine: str
    output: str | None
    format: str | None
    quiet: bool
    progress: bool
    no_uvloop: bool
    resolvers: str | None = None
    resume: bool = False
    csv_bom: bool = False
    workers: int = 1
    worker: tuple[int, int] | None = None  # K/N: this process is worker K of N
    ordered: bool = False
    unique: bool = False
    dask: str | None = None
    partition_size: int | None = None

    @classmethod
    def parse(
        cls,
        args: argparse.Namespace,
        *,
        files: Sequence[str],
        nameservers: Sequence[str] | None,
        default_types: Sequence[RecordType] = (RecordType.A,),
        fallback: str | None = None,
    ) -> RunOptions:
        """The options of `args`, a `resolve` or `demo` namespace (flags `demo` lacks take
        their defaults here), for these input `files` and `nameservers`."""
        given = [t for group in args.types for t in group] if args.types else default_types
        extra = {
            f.name: getattr(args, f.name)
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING and hasattr(args, f.name)
        }
        return cls(
            files=tuple(files),
            types=tuple(dict.fromkeys(given)),
            nameservers=tuple(nameservers) if nameservers is not None else None,
            concurrency=args.concurrency,
            timeout=args.timeout,
            tries=args.tries,
            qps=args.qps,
            deadline=args.deadline,
            fallback=fallback or str(getattr(args, "fallback", Fallback.NEVER.value)),
            engine=args.engine,
            output=args.output,
            format=args.format,
            quiet=args.quiet,
            progress=args.progress,
            no_uvloop=args.no_uvloop,
            **extra,
        )

    def replace(self, **changes: object) -> RunOptions:
        """A copy with `changes`."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def resolver(self) -> Resolver:
        """The `Resolver` these options describe."""
        return Resolver(
            self.nameservers,
            timeout=self.timeout,
            tries=self.tries,
            concurrency=self.concurrency,
            fallback=self.fallback,
            engine=self.engine,
            rate=self.qps,
            deadline=self.deadline,
        )

    def worker_command(self, files: Sequence[str], k: int) -> list[str]:
        """The command line of worker `k` of `workers`: the same settings, its share of the
        lines, rows on stdout in the run's format, the window and rate divided between them."""
        n = self.workers
        command = [sys.executable, "-m", "resolver", "resolve", *files, "--worker", f"{k}/{n}"]
        command += ["-o", "-", "--format", format_for(self.output, self.format)]
        command += ["-c", str(max(1, self.concurrency // n)), "--timeout", str(self.timeout)]
        command += ["--engine", self.engine]
        if self.tries is not None:
            command += ["--tries", str(self.tries)]
        command += ["--fallback", self.fallback]
        command += [arg for t in self.types for arg in ("-t", t.name)]
        command += [arg for ns in self.nameservers or () for arg in ("-n", ns)]
        if self.qps:
            command += ["--qps", str(self.qps / n)]
        if self.deadline:
            command += ["--deadline", str(self.deadline)]
        if self.no_uvloop:
            command.append("--no-uvloop")
        if self.unique:
            command.append("--unique")  # within each worker's share
        return command
