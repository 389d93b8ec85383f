"""Skip-or-fail helpers for tests that need something outside Python.

Tests that need Knot DNS or the private network namespace made by
``scripts/test`` call :func:`require_knot` / :func:`require_sandbox` first
(in the test or in a fixture).  Normally a missing prerequisite skips the test
with a clear reason; with ``RESOLVER_REQUIRE_SERVERS`` set (``scripts/test``
sets it under CI) it fails instead, so CI cannot go green by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from resolver.testing.knot import knot_available

__all__ = ["require_knot", "require_sandbox", "servers_required", "skip_or_fail"]


def servers_required() -> bool:
    """True when missing servers/sandbox must fail tests rather than skip them."""
    return os.environ.get("RESOLVER_REQUIRE_SERVERS", "").strip() not in ("", "0")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test with *reason*, or fail it under RESOLVER_REQUIRE_SERVERS."""
    if servers_required():
        pytest.fail(f"{reason} [RESOLVER_REQUIRE_SERVERS is set]", pytrace=False)
    pytest.skip(reason)


def require_knot() -> None:
    """Skip (or fail) unless Knot DNS's ``knotd`` is installed."""
    if not knot_available():
        skip_or_fail("Knot DNS (knotd) is not installed: run scripts/install --with-server")


def require_sandbox() -> None:
    """Skip (or fail) unless running inside the network namespace of scripts/test."""
    if os.environ.get("RESOLVER_SANDBOX") != "1":
        skip_or_fail(
            "needs the private network namespace made by scripts/test as root "
            "(RESOLVER_SANDBOX=1 is not set)"
        )
