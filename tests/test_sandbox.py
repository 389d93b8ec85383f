"""Prove that scripts/test runs the suite in a private network namespace.

Inside it only the loopback interface exists, /etc/resolv.conf names
127.0.0.1 only, and any non-loopback destination is unreachable, so no test
can send a DNS packet to a real nameserver.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket

import pytest

from tests._env import require_sandbox

pytestmark = pytest.mark.sandbox


@pytest.fixture(autouse=True)
def _sandbox() -> None:
    require_sandbox()


def _nameservers(text: str) -> list[str]:
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
    return servers


def test_resolv_conf_names_only_loopback() -> None:
    with open("/etc/resolv.conf") as f:
        servers = _nameservers(f.read())
    assert servers == ["127.0.0.1"]


def test_hosts_file_is_private_and_writable() -> None:
    with open("/etc/hosts") as f:
        text = f.read()
    assert "127.0.0.1 localhost" in text
    # Tests may add entries; the file is a temp file bind-mounted by scripts/test.
    assert os.access("/etc/hosts", os.W_OK)


def _connect_errno(family: socket.AddressFamily, address: tuple[str, int]) -> int:
    """connect() a UDP socket (which sends nothing) and return the errno, 0 if it worked."""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
        except OSError as exc:
            return exc.errno or -1
    return 0


def test_non_loopback_ipv4_is_unreachable() -> None:
    # 192.0.2.1 is TEST-NET-1: with only "lo" up there is no route to it.
    assert _connect_errno(socket.AF_INET, ("192.0.2.1", 53)) == errno.ENETUNREACH


def test_non_loopback_ipv6_is_unreachable() -> None:
    if not socket.has_ipv6:
        pytest.skip("Python was built without IPv6")
    try:
        code = _connect_errno(socket.AF_INET6, ("2001:db8::1", 53))  # documentation prefix
    except OSError as exc:  # socket() itself failed: IPv6 disabled in the kernel
        pytest.skip(f"IPv6 sockets are not available: {exc}")
    assert code in (errno.ENETUNREACH, errno.EADDRNOTAVAIL)


def test_loopback_works() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.bind(("127.0.0.1", 0))
        server.settimeout(2)
        client.sendto(b"ping", server.getsockname())
        data, peer = server.recvfrom(16)
    assert data == b"ping"
    assert ipaddress.ip_address(peer[0]).is_loopback
