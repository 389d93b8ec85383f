"""The demo zone of `resolver demo` (and of the `dns_server` fixture)."""

from __future__ import annotations

import ipaddress

__all__ = ["EXAMPLE_ORIGIN", "EXAMPLE_ZONE"]

EXAMPLE_ORIGIN = "example.test"
_V6 = ipaddress.IPv6Address("2001:db8::1").reverse_pointer
#: The zone of `resolver demo` (and the `dns_server` fixture): see examples/hosts.txt.
EXAMPLE_ZONE: dict[str, dict[str, list[str | bytes]]] = {
    "example.test": {
        "SOA": ["ns1.example.test hostmaster.example.test 2024010101 3600 600 604800 300"],
        "NS": ["ns1.example.test", "ns2.example.test"],
        "A": ["192.0.2.1"],
        "AAAA": ["2001:db8::1"],
        "MX": ["10 mail.example.test", "20 mail2.example.test"],
        "TXT": ["v=spf1 mx -all", 'say "hello", world'],
        "CAA": ['0 issue "ca.example.net"', '0 iodef "mailto:security@example.test"'],
    },
    "ns1.example.test": {"A": ["192.0.2.53"]},
    "ns2.example.test": {"AAAA": ["2001:db8::53"]},
    "www.example.test": {"A": ["192.0.2.10", "192.0.2.11"]},
    "v6only.example.test": {"AAAA": ["2001:db8::6"]},
    "dual.example.test": {"A": ["192.0.2.20"], "AAAA": ["2001:db8::20"]},
    "mail.example.test": {"A": ["192.0.2.25"], "AAAA": ["2001:db8::25"]},
    "mail2.example.test": {"A": ["192.0.2.26"]},
    "alias.example.test": {"CNAME": ["alias2.example.test"]},  # -> alias2 -> dual
    "alias2.example.test": {"CNAME": ["dual.example.test"]},
    "dangling.example.test": {"CNAME": ["missing.example.test"]},  # -> NXDOMAIN
    "text.example.test": {"TXT": ["héllo wörld", b'\x00\xff"raw\\', "x" * 300]},
    "_sip._tcp.example.test": {"SRV": ["10 60 5060 sip.example.test"]},
    "sip.example.test": {"A": ["192.0.2.30"]},
    "xn--bcher-kva.example.test": {"A": ["192.0.2.40"]},  # bücher.example.test
    "*.wild.example.test": {"A": ["192.0.2.50"], "TXT": ["wildcard"]},
    "2.0.192.in-addr.arpa": {
        "SOA": ["ns1.example.test hostmaster.example.test 1 3600 600 604800 300"],
        "NS": ["ns1.example.test"],
    },
    "1.2.0.192.in-addr.arpa": {"PTR": ["example.test"]},
    "10.2.0.192.in-addr.arpa": {"PTR": ["www.example.test"]},
    "8.b.d.0.1.0.0.2.ip6.arpa": {
        "SOA": ["ns1.example.test hostmaster.example.test 1 3600 600 604800 300"],
        "NS": ["ns1.example.test"],
    },
    _V6: {"PTR": ["example.test"]},
}
