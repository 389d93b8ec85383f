"""Zones the tests serve, and what each name is expected to resolve to."""

from __future__ import annotations

from resolver.testing import Zone

ORIGIN = "zone.test"

#: Every record type the resolver decodes, CNAME chains, IDN and reverse names.
ZONE: Zone = {
    "zone.test": {
        "SOA": ["ns1.zone.test hostmaster.zone.test 2024010101 3600 600 86400 60"],
        "NS": ["ns1.zone.test", "ns2.zone.test"],
        "MX": ["10 mx1.zone.test", "20 mx2.zone.test"],
        "CAA": ['0 issue "ca.example.net"'],
        "TXT": ["v=spf1 -all"],
    },
    "ns1.zone.test": {"A": ["192.0.2.53"]},
    "www.zone.test": {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"]},
    "v4.zone.test": {"A": ["192.0.2.4"]},
    "v6.zone.test": {"AAAA": ["2001:db8::6"]},
    "alias.zone.test": {"CNAME": ["www.zone.test"]},
    "alias2.zone.test": {"CNAME": ["alias.zone.test"]},
    "dangling.zone.test": {"CNAME": ["missing.zone.test"]},
    "text.zone.test": {"TXT": ['=cmd|" /C calc"!A0, "quoted", and\ttab', "second"]},
    "_sip._tcp.zone.test": {"SRV": ["10 60 5060 sip.zone.test"]},
    "xn--bcher-kva.zone.test": {"A": ["192.0.2.20"]},
    "1.2.0.192.in-addr.arpa": {"PTR": ["www.zone.test"]},
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": {
        "PTR": ["www.zone.test"]
    },
}
