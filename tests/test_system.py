"""The system's own resolver: default nameservers from /etc/resolv.conf and the getaddrinfo
fallback. Only inside the private network namespace of scripts/test, where
/etc/resolv.conf says 127.0.0.1 and /etc/hosts is ours to write: no packet can leave."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from resolver import Fallback, Query, RecordType, Resolver, Source, Status
from resolver.engines.system import HOSTS_RECHECK, HostsFile
from resolver.names import parse_line
from resolver.testing import Fault, LoopbackDNSServer, serve_in_thread
from tests._env import require_sandbox
from tests.zones import ZONE

HOSTS = """\
127.0.0.1 localhost
::1 localhost ip6-localhost
192.0.2.77 hosts-only.zone.test
2001:db8::77 hosts-only.zone.test
192.0.2.78 printer
"""


def write_hosts(text: str) -> None:
    """Replace the sandbox's private /etc/hosts (the `hosts_file` fixture restores it)."""
    Path("/etc/hosts").write_text(text)


@pytest.fixture
def hosts_file() -> Iterator[None]:
    require_sandbox()
    path = Path("/etc/hosts")
    before = path.read_text()
    path.write_text(HOSTS)
    try:
        yield
    finally:
        path.write_text(before)


SEARCH = "corp.internal"


@pytest.fixture
def search_domain() -> Iterator[str]:
    """A `search` line in the sandbox's /etc/resolv.conf (restored afterwards)."""
    require_sandbox()
    path = Path("/etc/resolv.conf")
    before = path.read_text()
    path.write_text(f"{before}search {SEARCH}\n")
    try:
        yield SEARCH
    finally:
        path.write_text(before)


def searched(server: LoopbackDNSServer) -> list[str]:
    """The names the server was asked with the search domain appended."""
    return [q.name for q in server.queries if q.name.lower().endswith(SEARCH)]


@pytest.fixture
async def system_dns(hosts_file: None) -> AsyncIterator[LoopbackDNSServer]:
    """The test server on 127.0.0.1:53, the nameserver /etc/resolv.conf names."""
    async with LoopbackDNSServer(ZONE, port=53) as server:
        yield server


async def test_default_nameservers_come_from_resolv_conf(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(timeout=0.5) as r:
        result = await r.lookup("www.zone.test", "AAAA")
    assert result.status is Status.NOERROR
    assert result.source is Source.DNS
    assert result.answers == (ip_address("2001:db8::1"),)
    assert system_dns.count("www.zone.test") >= 1


async def test_auto_falls_back_to_hosts_file(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(timeout=0.5) as r:
        a = await r.lookup("hosts-only.zone.test", "A")
        aaaa = await r.lookup("hosts-only.zone.test", "AAAA")
        single = await r.lookup("printer", "A")
        nowhere = await r.lookup("nowhere.zone.test", "A")
        mx = await r.lookup("hosts-only.zone.test", "MX")
    assert (a.status, a.source, a.answers) == (
        Status.NOERROR,
        Source.SYSTEM,
        (ip_address("192.0.2.77"),),
    )
    assert aaaa.answers == (ip_address("2001:db8::77"),)
    assert aaaa.source is Source.SYSTEM
    assert single.answers == (ip_address("192.0.2.78"),)
    assert (nowhere.status, nowhere.source) == (Status.NXDOMAIN, Source.DNS)
    assert (mx.status, mx.source) == (Status.NXDOMAIN, Source.DNS)  # not a system type


async def test_reverse_lookup_through_the_system(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(timeout=0.5) as r:
        result = await r.lookup("192.0.2.77")  # no PTR in DNS; /etc/hosts knows it
        dns = await r.lookup("192.0.2.1")
    assert (result.status, result.source, result.answers) == (
        Status.NOERROR,
        Source.SYSTEM,
        ("hosts-only.zone.test",),
    )
    assert (dns.source, dns.answers) == (Source.DNS, ("www.zone.test",))


async def test_never_and_pinned_servers_do_not_fall_back(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(timeout=0.5, fallback=Fallback.NEVER) as never:
        result = await never.lookup("hosts-only.zone.test")
    assert (result.status, result.source) == (Status.NXDOMAIN, Source.DNS)
    async with LoopbackDNSServer(ZONE) as pinned_server:
        async with Resolver([pinned_server.nameserver], timeout=0.5) as pinned:
            auto = await pinned.lookup("hosts-only.zone.test")
        async with Resolver([pinned_server.nameserver], fallback="always") as always:
            forced = await always.lookup("hosts-only.zone.test")
    assert (auto.status, auto.source) == (Status.NXDOMAIN, Source.DNS)
    assert (forced.status, forced.source) == (Status.NOERROR, Source.SYSTEM)


async def test_only_asks_the_system_resolver(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(fallback="only") as r:
        www = await r.lookup("www.zone.test", "A")  # glibc asks 127.0.0.1:53 itself
        missing = await r.lookup("nowhere.zone.test", "A")
        v6only = await r.lookup("v6.zone.test", "A")
        mx = await r.lookup("zone.test", "MX")
    assert www.source is Source.SYSTEM
    assert set(www.answers) == {ip_address("192.0.2.1"), ip_address("192.0.2.2")}
    assert missing.status is Status.NXDOMAIN
    assert v6only.status in (Status.NODATA, Status.NXDOMAIN)  # glibc cannot tell them apart
    assert mx.status is Status.ERROR
    assert mx.error is not None
    assert "MX" in mx.error


async def test_no_dns_server_at_all_still_answers_from_hosts(hosts_file: None) -> None:
    async with Resolver(timeout=0.2, tries=1) as r:  # nothing listens on 127.0.0.1:53
        known = await r.lookup("hosts-only.zone.test")
        unknown = await r.lookup("www.zone.test")
    assert (known.status, known.source) == (Status.NOERROR, Source.SYSTEM)
    assert unknown.source is Source.DNS
    assert unknown.status in (Status.ERROR, Status.TIMEOUT)
    assert unknown.error


def test_cli_with_the_system_resolver(hosts_file: None, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\nhosts-only.zone.test\nnowhere.zone.test\n")
    with serve_in_thread(ZONE, port=53):  # the process needs a server while we wait
        proc = subprocess.run(
            [sys.executable, "-m", "resolver", "resolve", str(hosts), "--timeout", "0.5"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    rows = {r["line"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert (rows[1]["status"], rows[1]["source"]) == ("NOERROR", "dns")
    assert (rows[2]["status"], rows[2]["source"], rows[2]["answers"]) == (
        "NOERROR",
        "system",
        ["192.0.2.77"],
    )
    assert (rows[3]["status"], rows[3]["source"]) == ("NXDOMAIN", "dns")


async def test_auto_fallback_adds_no_dns_query_and_no_search_domain(
    system_dns: LoopbackDNSServer, search_domain: str
) -> None:
    """The issue's case: NXDOMAIN names cost one query each, never `NAME.search.domain`;
    the hosts file still answers a name DNS does not know, without asking DNS again."""
    missing = [f"missing{i}.zone.test" for i in range(60)] + [f"single{i}" for i in range(10)]
    lines = [*missing, "192.0.2.200", "hosts-only.zone.test", "printer", "192.0.2.77"]
    system_dns.set_fault("broken.zone.test", Fault.SERVFAIL)
    system_dns.set_fault("printer", Fault.SERVFAIL)  # DNS answered: the hosts file only
    async with Resolver(timeout=0.5, tries=2) as r:
        results = [x async for x in r.resolve_many([*lines, "broken.zone.test"], ["A", "AAAA"])]
    by = {(x.name, x.type.name): x for x in results}
    for name in missing:
        for rtype in ("A", "AAAA"):
            assert (by[name, rtype].status, by[name, rtype].source) == (
                Status.NXDOMAIN,
                Source.DNS,
            )
    assert by["hosts-only.zone.test", "A"].source is Source.SYSTEM
    assert by["hosts-only.zone.test", "AAAA"].answers == (ip_address("2001:db8::77"),)
    assert (by["printer", "A"].source, by["printer", "A"].answers) == (
        Source.SYSTEM,
        (ip_address("192.0.2.78"),),
    )
    assert by["printer", "AAAA"].status is Status.SERVFAIL
    assert by["77.2.0.192.in-addr.arpa", "PTR"].answers == ("hosts-only.zone.test",)
    assert by["77.2.0.192.in-addr.arpa", "PTR"].source is Source.SYSTEM
    assert by["broken.zone.test", "A"].status is Status.SERVFAIL
    assert searched(system_dns) == []
    asked = Counter(q.name.lower() for q in system_dns.queries)
    assert asked.pop("broken.zone.test") == 2 * 2  # tries x (A, AAAA): DNS's own retries
    assert asked.pop("printer") == 2 * 2
    assert asked.pop("200.2.0.192.in-addr.arpa") == 1
    assert asked.pop("77.2.0.192.in-addr.arpa") == 1
    assert asked == Counter({name: 2 for name in [*missing, "hosts-only.zone.test"]})


def test_cli_fallback_asks_each_missing_name_once(hosts_file: None, search_domain: str) -> None:
    """`resolver resolve` with the system's nameservers and a search domain: 300 names
    that do not exist cost the server 300 queries."""
    names = [f"gone{i}.zone.test" for i in range(300)]
    with serve_in_thread(ZONE, port=53) as server:
        proc = subprocess.run(
            [sys.executable, "-m", "resolver", "resolve", "-q", "--fallback", "auto"],
            input="\n".join(names) + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {(r["status"], r["source"]) for r in rows} == {("NXDOMAIN", "dns")}
    assert len(rows) == len(names)
    assert searched(server) == []
    assert server.count() == len(names)


async def test_timeout_still_asks_the_system_for_the_absolute_name(
    system_dns: LoopbackDNSServer, search_domain: str
) -> None:
    """After a TIMEOUT the system resolver is asked, for the name as given (no search
    domain); a hosts-file name is answered from the file without another query."""
    for name in ("www.zone.test", "gone.zone.test", "192.0.2.1"):
        system_dns.set_fault(name, Fault.DROP, times=1)
    system_dns.set_fault("1.2.0.192.in-addr.arpa", Fault.DROP, times=1)
    system_dns.set_fault("hosts-only.zone.test", Fault.DROP)
    async with Resolver(timeout=0.3, tries=1) as r:
        www = await r.lookup("www.zone.test")
        gone = await r.lookup("gone.zone.test")
        local = await r.lookup("hosts-only.zone.test")
        ptr = await r.lookup("192.0.2.1")
    assert (www.status, www.source) == (Status.NOERROR, Source.SYSTEM)
    assert set(www.answers) == {ip_address("192.0.2.1"), ip_address("192.0.2.2")}
    assert www.elapsed >= 0.3  # from the DNS query's start: its timeout included
    assert (gone.status, gone.source) == (Status.TIMEOUT, Source.DNS)
    assert (local.status, local.source) == (Status.NOERROR, Source.SYSTEM)
    assert local.answers == (ip_address("192.0.2.77"),)
    assert (ptr.status, ptr.source, ptr.answers) == (
        Status.NOERROR,
        Source.SYSTEM,
        ("www.zone.test",),
    )
    assert searched(system_dns) == []
    assert system_dns.count("www.zone.test") == 2  # the engine's attempt, then getaddrinfo
    assert system_dns.count("gone.zone.test") == 2
    assert system_dns.count("hosts-only.zone.test") == 1  # the hosts file answered
    assert system_dns.count("1.2.0.192.in-addr.arpa") == 2


async def test_only_asks_absolute_names_and_reads_the_hosts_file(
    system_dns: LoopbackDNSServer, search_domain: str
) -> None:
    async with Resolver(fallback="only") as r:
        missing = await r.lookup("nowhere.zone.test")
        single = await r.lookup("printer")
        local = await r.lookup("hosts-only.zone.test", "AAAA")
        www = await r.lookup("www.zone.test", "AAAA")
    assert (missing.status, missing.source) == (Status.NXDOMAIN, Source.SYSTEM)
    assert single.answers == (ip_address("192.0.2.78"),)
    assert local.answers == (ip_address("2001:db8::77"),)
    assert www.answers == (ip_address("2001:db8::1"),)
    assert searched(system_dns) == []
    assert system_dns.count("nowhere.zone.test") == 1
    assert system_dns.count("printer") + system_dns.count("hosts-only.zone.test") == 0


async def test_hosts_file_changes_are_seen(system_dns: LoopbackDNSServer) -> None:
    async with Resolver(timeout=0.5) as r:
        before = await r.lookup("added.zone.test")
        write_hosts(HOSTS + "192.0.2.99 added.zone.test\n")
        await asyncio.sleep(HOSTS_RECHECK + 0.1)
        after = await r.lookup("added.zone.test")
        write_hosts(HOSTS)
        await asyncio.sleep(HOSTS_RECHECK + 0.1)
        removed = await r.lookup("added.zone.test")
    assert (before.status, before.source) == (Status.NXDOMAIN, Source.DNS)
    assert (after.status, after.source) == (Status.NOERROR, Source.SYSTEM)
    assert after.answers == (ip_address("192.0.2.99"),)
    assert (removed.status, removed.source) == (Status.NXDOMAIN, Source.DNS)


def _ask(hosts: HostsFile, line: str, rtype: str = "A") -> tuple[object, ...]:
    query = parse_line(line, 1, [RecordType.parse(rtype)])[0]
    assert isinstance(query, Query)
    return hosts.lookup(query)


def test_hosts_file_is_parsed_as_glibc_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text(
        "# a comment line\n"
        "127.0.0.1\tlocalhost\n"
        "192.0.2.10  Web.Example.TEST. www.example.test  # canonical name, then an alias\n"
        "192.0.2.11 www.example.test\n"
        "192.0.2.10 www.example.test\n"  # the same address again: one answer
        "2001:db8::10 web.example.test\n"
        "fe80::1%eth0 link.example.test\n"
        "192.0.2.12\n"  # no name: ignored
        "not-an-address bad.example.test\n"
        "192.0.2.13 later.example.test web.example.test\n"
    )
    hosts = HostsFile(path)
    assert _ask(hosts, "web.example.test") == (
        ip_address("192.0.2.10"),
        ip_address("192.0.2.13"),
    )
    assert _ask(hosts, "WWW.example.test.") == (
        ip_address("192.0.2.10"),
        ip_address("192.0.2.11"),
    )
    assert _ask(hosts, "web.example.test", "AAAA") == (ip_address("2001:db8::10"),)
    assert _ask(hosts, "link.example.test", "AAAA") == (ip_address("fe80::1"),)
    assert _ask(hosts, "localhost") == (ip_address("127.0.0.1"),)
    assert _ask(hosts, "localhost", "AAAA") == ()
    assert _ask(hosts, "bad.example.test") == ()
    assert _ask(hosts, "web.example.test", "MX") == ()
    assert _ask(hosts, "192.0.2.10") == ("web.example.test",)  # the first line's first name
    assert _ask(hosts, "192.0.2.13") == ("later.example.test",)
    assert _ask(hosts, "2001:db8::10") == ("web.example.test",)
    assert _ask(hosts, "192.0.2.12") == ()


def test_hosts_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    hosts = HostsFile(path, recheck=0)
    assert _ask(hosts, "a.example.test") == ()  # no file: no entries
    path.write_text("192.0.2.1 a.example.test\n")
    assert _ask(hosts, "a.example.test") == (ip_address("192.0.2.1"),)
    mtime = path.stat().st_mtime_ns
    path.write_text("192.0.2.2 a.example.test\n")  # the same size and inode: the mtime tells
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))  # even within one clock tick
    assert _ask(hosts, "a.example.test") == (ip_address("192.0.2.2"),)
    path.unlink()
    assert _ask(hosts, "a.example.test") == ()


def test_hosts_file_changes_are_checked_at_most_every_recheck_seconds(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_text("192.0.2.1 a.example.test\n")
    hosts = HostsFile(path, recheck=3600)
    assert _ask(hosts, "a.example.test") == (ip_address("192.0.2.1"),)
    path.write_text("192.0.2.2 a.example.test b.example.test\n")
    assert _ask(hosts, "b.example.test") == ()  # not looked at again within the hour
