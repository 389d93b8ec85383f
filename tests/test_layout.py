"""The house rules that a reader would otherwise have to check by hand: no import cycles
between the package's modules (function-level and `TYPE_CHECKING` imports included), and a
library that loads nothing of the command line or of the output formats."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import resolver

PACKAGE = Path(resolver.__file__).parent


def module_name(path: Path) -> str:
    parts = ["resolver", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere in its code (not docstrings)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            # `from P import m` of a submodule m imports m (P is only its package); of any
            # other name, it imports P's own code.
            subs = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [sub for sub in subs if sub in modules]
            if len(names) < len(subs):
                names.append(node.module)
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def test_no_module_imports_one_that_imports_it_back() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports() -> None:
    """The check above can fail: the graph holds the imports it should."""
    edges = graph()
    assert "resolver.model" in edges["resolver.core"]
    assert "resolver.stream" in edges["resolver.cli.run"]  # a package module's import


def test_the_library_loads_no_command_line_and_no_output_format() -> None:
    code = (
        "import sys, resolver\n"
        "bad = [m for m in ('argparse', 'csv', 'sqlite3', 'resolver.cli', 'resolver.writers',"
        " 'resolver.testing', 'pytest') if m in sys.modules]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_test_tooling_loads_no_pytest() -> None:
    """`resolver.testing` needs only the runtime dependencies: its pytest plugin, which
    imports pytest-asyncio (the `test` extra), is loaded by name, never by the package."""
    code = (
        "import sys, resolver.testing\n"
        "test_extra = ('pytest', '_pytest', 'pytest_asyncio')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in test_extra]\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
