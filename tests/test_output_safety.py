"""`-o` never destroys what the user had: an existing SQLite database keeps its other tables
(results go into its table `results`, or the run is refused), and an output that is one of
the inputs is refused before anything is read or written."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from resolver.testing import LoopbackDNSServer, serve_in_thread
from tests.zones import ZONE

HOSTS = "www.zone.test\nv6.zone.test\nnothing.zone.test\n"


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(ZONE) as running:
        yield running


def cli(
    *args: str, stdin: int | None = subprocess.DEVNULL, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resolver", *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def refused(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """The run was refused as bad usage: exit 2, one line on stderr naming `words`."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("resolver: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert proc.stdout == ""


def make_db(path: Path, *statements: str) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        for statement in statements:
            db.execute(statement)
        db.commit()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


def tables(path: Path) -> list[str]:
    rows = query(path, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [str(name) for (name,) in rows]


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.txt"
    path.write_text(HOSTS)
    return path


# an existing database


def test_results_go_into_a_database_and_its_other_tables_stay(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    db = tmp_path / "mine.db"
    make_db(
        db,
        "CREATE TABLE notes (text TEXT)",
        "INSERT INTO notes VALUES ('my notes')",
        "CREATE INDEX notes_text ON notes (text)",
        "CREATE VIEW short AS SELECT substr(text, 1, 2) FROM notes",
    )
    proc = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert proc.returncode == 0, proc.stderr
    assert tables(db) == ["notes", "results"]
    assert query(db, "SELECT text FROM notes") == [("my notes",)]
    assert query(db, "SELECT * FROM short") == [("my",)]
    assert query(db, "SELECT line, status FROM results ORDER BY line") == [
        (1, "NOERROR"),
        (2, "NODATA"),
        (3, "NXDOMAIN"),
    ]


def test_an_empty_results_table_of_ours_is_filled(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    db = tmp_path / "out.db"
    first = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert first.returncode == 0, first.stderr
    make_db(db, "DELETE FROM results", "CREATE TABLE notes (text TEXT)")
    again = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert again.returncode == 0, again.stderr
    assert query(db, "SELECT count(*) FROM results") == [(3,)]
    assert tables(db) == ["notes", "results"]


def test_a_database_that_already_holds_results_is_refused(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    db = tmp_path / "out.db"
    first = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert first.returncode == 0, first.stderr
    make_db(db, "CREATE TABLE notes (text TEXT)", "INSERT INTO notes VALUES ('kept')")
    before = query(db, "SELECT * FROM results ORDER BY rowid")
    again = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    refused(again, str(db), "3 rows", "--resume")
    assert "append=True" not in again.stderr  # the library's term, said as the flag
    assert query(db, "SELECT * FROM results ORDER BY rowid") == before
    assert query(db, "SELECT text FROM notes") == [("kept",)]
    # --resume continues it (nothing is missing: nothing is added)
    resumed = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert query(db, "SELECT * FROM results ORDER BY rowid") == before
    assert query(db, "SELECT text FROM notes") == [("kept",)]


def test_resume_into_a_database_with_other_tables(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    db = tmp_path / "out.db"
    first = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert first.returncode == 0, first.stderr
    make_db(db, "DELETE FROM results WHERE line > 1", "CREATE TABLE notes (text TEXT)")
    resumed = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "1 rows were already there" in resumed.stderr
    assert query(db, "SELECT line FROM results ORDER BY line") == [(1,), (2,), (3,)]
    assert tables(db) == ["notes", "results"]


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("CREATE TABLE results (score INTEGER, player TEXT)", ["score"]),
        ("CREATE VIEW results AS SELECT 1 AS one", ["view"]),
    ],
)
@pytest.mark.parametrize("resume", [False, True])
def test_a_results_table_of_another_shape_is_refused_untouched(
    tmp_path: Path,
    server: LoopbackDNSServer,
    hosts: Path,
    statement: str,
    words: list[str],
    resume: bool,
) -> None:
    db = tmp_path / "scores.db"
    make_db(db, statement, "CREATE TABLE notes (text TEXT)")
    before = db.read_bytes()
    args = ["resolve", str(hosts), "-n", server.nameserver, "-o", str(db)]
    proc = cli(*args, *(["--resume"] if resume else []))
    refused(proc, str(db), "resolver output", *([] if resume else words))
    assert db.read_bytes() == before  # not even the journal mode changed
    assert not Path(f"{db}-wal").exists()


def test_a_results_table_with_a_required_column_of_its_own_is_refused(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    """Extra columns are fine when a row can leave them out; one it cannot would fail
    every insert in the middle of the run."""
    db = tmp_path / "out.db"
    first = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert first.returncode == 0, first.stderr
    make_db(db, "DELETE FROM results", "ALTER TABLE results ADD COLUMN tag TEXT")
    ok = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert ok.returncode == 0, ok.stderr
    assert query(db, "SELECT count(*), count(tag) FROM results") == [(3, 0)]
    make_db(db, "DELETE FROM results", "ALTER TABLE results ADD COLUMN owner TEXT NOT NULL")
    proc = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    refused(proc, "owner")


@pytest.mark.parametrize("resume", [False, True])
def test_a_file_that_is_not_a_database_is_refused_untouched(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path, resume: bool
) -> None:
    db = tmp_path / "notes.db"
    db.write_text("my notes, not a database\n" * 200)
    before = db.read_bytes()
    args = ["resolve", str(hosts), "-n", server.nameserver, "-o", str(db)]
    proc = cli(*args, *(["--resume"] if resume else []))
    refused(proc, str(db))
    assert db.read_bytes() == before


def test_a_stale_wal_without_its_database_is_harmless(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    """Nothing is deleted any more: SQLite ignores a WAL that is not its database's."""
    db = tmp_path / "out.db"
    first = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert first.returncode == 0, first.stderr
    Path(f"{db}-wal").write_bytes(b"\0" * 4096)
    db.unlink()
    proc = cli("resolve", str(hosts), "-n", server.nameserver, "-o", str(db))
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT count(*) FROM results") == [(3,)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


# the output is one of the inputs


@pytest.mark.parametrize("name", ["hosts.jsonl", "hosts.csv", "hosts.db"])
@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("resume", [False, True])
def test_an_output_that_is_an_input_is_refused_untouched(
    tmp_path: Path, server: LoopbackDNSServer, name: str, how: str, resume: bool
) -> None:
    hosts = tmp_path / name
    hosts.write_text(HOSTS)
    other = tmp_path / "more.txt"
    other.write_text("v4.zone.test\n")
    out = {
        "same": str(hosts),
        "relative": os.path.relpath(hosts),
        "symlink": str(tmp_path / f"link-{name}"),
        "hardlink": str(tmp_path / f"hard-{name}"),
    }[how]
    if how == "symlink":
        os.symlink(hosts, out)
    elif how == "hardlink":
        os.link(hosts, out)
    args = ["resolve", str(other), str(hosts), "-n", server.nameserver, "-o", out]
    proc = cli(*args, *(["--resume"] if resume else []))
    refused(proc, out, str(hosts), "input")
    assert hosts.read_text() == HOSTS
    assert other.read_text() == "v4.zone.test\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "-wal" in p.name) == []


@pytest.mark.parametrize("name", ["hosts.jsonl", "hosts.csv", "hosts.db"])
def test_an_output_that_is_standard_input_is_refused_untouched(
    tmp_path: Path, server: LoopbackDNSServer, name: str
) -> None:
    hosts = tmp_path / name
    hosts.write_text(HOSTS)
    with hosts.open("rb") as stdin:
        proc = cli("resolve", "-n", server.nameserver, "-o", str(hosts), stdin=stdin.fileno())
    refused(proc, str(hosts), "standard input")
    assert hosts.read_text() == HOSTS


def test_an_output_that_is_the_resolvers_file_is_refused_untouched(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    servers = tmp_path / "servers.jsonl"
    servers.write_text(f"{server.nameserver}\n")
    proc = cli("resolve", str(hosts), "--resolvers", str(servers), "-o", str(servers))
    refused(proc, str(servers), "--resolvers")
    assert servers.read_text() == f"{server.nameserver}\n"


def test_an_input_that_is_not_the_output_is_fine(
    tmp_path: Path, server: LoopbackDNSServer, hosts: Path
) -> None:
    """Reading stdin from /dev/null, a pipe, or another file is no clash."""
    out = tmp_path / "out.jsonl"
    with hosts.open("rb") as stdin:
        proc = cli("resolve", "-n", server.nameserver, "-o", str(out), stdin=stdin.fileno())
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 3
    proc = cli("resolve", str(hosts), "-", "-n", server.nameserver, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(out.read_text().splitlines()) == 3


def test_an_output_that_is_an_input_is_refused_with_workers_too(
    tmp_path: Path, server: LoopbackDNSServer
) -> None:
    hosts = tmp_path / "hosts.jsonl"
    hosts.write_text(HOSTS)
    args = ["resolve", str(hosts), "-n", server.nameserver, "--workers", "2", "-o", str(hosts)]
    refused(cli(*args), str(hosts), "input")
    assert hosts.read_text() == HOSTS
