"""Argument types shared by the command line's parsers (`resolve`, `demo`, `bench`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["positive"]


def positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    """An argparse type: a number of `kind`, above zero, or a clear usage error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse
