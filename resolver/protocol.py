"""DNS protocol constants: the one home of type codes, rcodes, header flags and limits.

Everything that speaks or reads DNS messages takes its numbers from here: the record types
a `Query` asks (`resolver.model.RecordType`), the wire engine's codec, the c-ares engine's
answer parsing and the test server (`resolver.testing`).
"""

from __future__ import annotations

import enum

__all__ = [
    "CLASS_IN",
    "EDNS_PAYLOAD",
    "FLAG_AA",
    "FLAG_QR",
    "FLAG_RD",
    "FLAG_TC",
    "MASK_OPCODE",
    "MASK_RCODE",
    "MAX_CNAME_CHAIN",
    "Rcode",
    "Type",
]


class Type(enum.IntEnum):
    """Record type codes (RFC 1035 and later) that some part of the package names."""

    A = 1
    NS = 2
    CNAME = 5
    SOA = 6
    PTR = 12
    HINFO = 13
    MX = 15
    TXT = 16
    SIG = 24
    AAAA = 28
    SRV = 33
    NAPTR = 35
    OPT = 41
    TLSA = 52
    SVCB = 64
    HTTPS = 65
    ANY = 255
    URI = 256
    CAA = 257


class Rcode(enum.IntEnum):
    """Response codes (RFC 1035 section 4.1.1)."""

    NOERROR = 0
    FORMERR = 1
    SERVFAIL = 2
    NXDOMAIN = 3
    NOTIMP = 4
    REFUSED = 5


#: Header flag bits, and the masks of the opcode and the (non-extended) rcode.
FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD = 0x8000, 0x0400, 0x0200, 0x0100
MASK_OPCODE, MASK_RCODE = 0x7800, 0x000F
CLASS_IN = 1
#: The EDNS payload size both the wire engine and the test server advertise (the DNS flag
#: day 2020 value: no IP fragmentation on common paths).
EDNS_PAYLOAD = 1232
#: CNAME steps followed within one answer (both engines, as c-ares does); a longer chain
#: or a loop is an ERROR.
MAX_CNAME_CHAIN = 64
