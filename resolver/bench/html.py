"""The HTML report (to come)."""

from __future__ import annotations

from resolver.bench.run import BenchResult

__all__ = ["page"]


def page(result: BenchResult) -> str:
    return "<!doctype html><title>bench</title>"
