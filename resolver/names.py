"""Input lines to queries: comments, IP literals and host name normalization.

Rules, and why:

- Blank lines and lines whose first non-space character is ``#`` are skipped; so is
  an inline comment, a ``#`` after whitespace (``example.com  # note``). A ``#`` with
  no whitespace before it is part of the name, and so invalid.
- An IPv4 or IPv6 literal (IPv6 also as ``[2001:db8::1]``) means a reverse lookup:
  exactly one PTR query, whatever types were asked. A literal with a zone id
  (``fe80::1%eth0``) or a non-IPv6 in brackets is one invalid PTR row: a zone id is
  local to a host and says nothing to the DNS.
- Dotted numbers that are not a valid IPv4 address (``999.1.1.1``, ``1.2.3``,
  ``01.2.3.4``) are names, as dig would ask them.
- ASCII labels are lowercased and may hold letters, digits, ``-`` and ``_`` (service
  labels such as ``_sip._tcp``, DKIM selectors); hyphen placement is not checked and
  ``xn--`` labels are kept as given: the DNS allows both and servers answer.
- Non-ASCII labels go through UTS #46 (non-transitional, with STD3 rules, so no
  mapping can produce ``/``, ``!`` and the like) to A-labels via ``idna``.
- Input longer than 1024 characters is rejected as too long before any other work:
  no name is that long unless padded with code points UTS #46 ignores.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address
from socket import AF_INET, inet_ntop, inet_pton

import idna

from resolver.model import InvalidInput, Query, RecordType

__all__ = [
    "MAX_LABEL",
    "MAX_NAME",
    "InvalidName",
    "normalize_name",
    "parse_line",
    "parse_lines",
    "reverse_name",
]

MAX_NAME = 253  #: octets in a name, without its trailing dot
MAX_LABEL = 63  #: octets in a label
_MAX_INPUT = 1024  # characters: longer input is rejected before any IDNA work

_new = tuple.__new__
#: The field order of the positional `_new(Query, ...)` below: a change of `Query`'s fields
#: fails here, at import, instead of shuffling every query silently.
if Query._fields != ("name", "type", "text", "line", "address"):
    raise ImportError(f"Query's fields are {Query._fields}: update the line parser")
_COMMENT = re.compile(r"(?:^|\s)#")
# Whitespace, C0/C1 controls, DEL, and ASCII other than letters, digits, "-", "_", ".".
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.\-\x80-\U0010FFFF]|[\x80-\x9f]|\s")
# The full stops UTS #46 maps to ".", so that labels split where idna would split them.
#: A plain lowercase ASCII name (one trailing dot allowed): valid as it is, no IDNA needed.
_PLAIN = re.compile(r"(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?")
#: A plain ASCII name in any case, nothing around it, with a character no IP literal has:
#: the fast path of `parse_line`.
_SIMPLE = re.compile(r"(?=[^g-zG-Z_-]*[g-zG-Z_-])(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}\.?")
#: Only these characters can spell an IP literal (brackets are looked at separately).
_MAYBE_IP = re.compile(r"[0-9A-Fa-f.:]+")
_DOTS = str.maketrans(dict.fromkeys("\u3002\uff0e\uff61", "."))
_CHAR_NAMES = {" ": "space", "\t": "tab", "\n": "line feed", "\r": "carriage return"}


class InvalidName(ValueError):
    """A name that cannot be asked; the message is a short human reason."""


def parse_lines(
    texts: Iterable[str], first: int, types: Sequence[RecordType]
) -> list[Query | InvalidInput]:
    """What `parse_line` gives for each of `texts`, numbered from `first`, in one list
    (the bulk path: a plain name asked for one type costs no call)."""
    if len(types) != 1:
        return [item for n, text in enumerate(texts, first) for item in parse_line(text, n, types)]
    (qtype,) = types
    simple = _SIMPLE.fullmatch
    out: list[Query | InvalidInput] = []
    for n, text in enumerate(texts, first):
        if len(text) <= MAX_NAME and simple(text):
            # tuple.__new__: Query(...) without the Python-level __new__ of a NamedTuple.
            out.append(_new(Query, (text.lower().removesuffix("."), qtype, text, n, None)))
        elif (query := _ipv4_query(text, n)) is not None:
            out.append(query)
        else:
            out += parse_line(text, n, types)
    return out


def parse_line(text: str, line: int, types: Sequence[RecordType]) -> list[Query | InvalidInput]:
    """The queries for one input line; a trailing newline and CR are dropped.

    `[]` for a blank or comment line; one PTR query for an IP literal; otherwise one
    `Query` per type in `types`, or one `InvalidInput` per type when the name is invalid.
    """
    if _SIMPLE.fullmatch(text):
        # Most lines of a host list: a plain name, valid as it is once lowercased.
        name = text.lower().removesuffix(".")
        if len(name) <= MAX_NAME:
            return [Query(name, t, text, line) for t in types]
    if (query := _ipv4_query(text, line)) is not None:
        return [query]
    text = text.removesuffix("\n").removesuffix("\r")
    body = text.strip()
    if comment := _COMMENT.search(body):
        body = body[: comment.start()].rstrip()
    if not body:
        return []
    try:
        address = _parse_address(body)
    except InvalidName as err:
        return [InvalidInput(text=text, type=RecordType.PTR, error=str(err), line=line)]
    if address is not None:
        name = reverse_name(address)
        return [Query(name=name, type=RecordType.PTR, text=text, line=line, address=address)]
    try:
        name = normalize_name(body)
    except InvalidName as err:
        return [InvalidInput(text=text, type=t, error=str(err), line=line) for t in types]
    return [Query(name=name, type=t, text=text, line=line) for t in types]


def _ipv4_query(text: str, line: int) -> Query | None:
    """The PTR query of an IPv4 address in its usual form (`192.0.2.1`, nothing around it,
    no leading zeros: as written by most), else None."""
    try:
        packed = inet_pton(AF_INET, text)
    except (OSError, ValueError):  # ValueError: a NUL character
        return None
    if inet_ntop(AF_INET, packed) != text:
        return None
    a, b, c, d = text.split(".")
    name = f"{d}.{c}.{b}.{a}.in-addr.arpa"
    # tuple.__new__: Query(...) without the Python-level __new__ of a NamedTuple.
    return _new(Query, (name, RecordType.PTR, text, line, IPv4Address(packed)))


def normalize_name(text: str) -> str:
    """`text` trimmed, without one trailing dot, as lowercase A-labels; raises `InvalidName`."""
    name = text.strip()
    if name.isascii():  # the common case, without the checks IDNA needs
        lower = name.lower()
        if _PLAIN.fullmatch(lower) and len(lower.removesuffix(".")) <= MAX_NAME:
            return lower.removesuffix(".")
    if not name:
        raise InvalidName("empty name")
    if len(name) > _MAX_INPUT:
        raise InvalidName(f"name longer than {MAX_NAME} octets")
    if "\0" in name:
        raise InvalidName("NUL byte in name")
    if bad := _BAD_CHAR.search(name):
        raise InvalidName(f"invalid character {_describe(bad.group())}")
    name = name.translate(_DOTS).removesuffix(".")
    if not name:
        raise InvalidName("the root '.' is not a host name")
    name = ".".join(_normalize_label(label) for label in name.split("."))
    if len(name) > MAX_NAME:
        raise InvalidName(f"name longer than {MAX_NAME} octets")
    return name


def reverse_name(address: IPv4Address | IPv6Address) -> str:
    """The in-addr.arpa / ip6.arpa name of `address`, without a trailing dot."""
    return address.reverse_pointer


def _parse_address(body: str) -> IPv4Address | IPv6Address | None:
    """The address `body` spells, or None if it is not an IP literal; raises `InvalidName`."""
    bracketed = body.startswith("[") and body.endswith("]")
    prefix, slash, bits = body.partition("/")
    if slash and bits.isdigit() and _MAYBE_IP.fullmatch(prefix):
        # A range would be many rows for one line, and rows are keyed by (line, type).
        raise InvalidName(
            f"CIDR ranges are not expanded: {_quote(body)}; list the addresses, one a line"
        )
    if not bracketed and not _MAYBE_IP.fullmatch(body.partition("%")[0]):
        return None  # most lines: a name, not worth an exception from ipaddress
    literal = body[1:-1] if bracketed else body
    address, percent, _ = literal.partition("%")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        if bracketed:
            raise InvalidName(f"invalid IPv6 literal: {_quote(body)}") from None
        return None
    if percent:
        raise InvalidName(f"zone id not supported: {_quote(body)}")
    if bracketed and parsed.version != 6:
        raise InvalidName(f"only IPv6 goes in brackets: {_quote(body)}")
    return parsed


def _normalize_label(label: str) -> str:
    """One label, lowercased (ASCII) or as an A-label (IDNA); raises `InvalidName`."""
    if not label:
        raise InvalidName("empty label")
    if label.isascii():
        label = label.lower()
    else:
        try:
            label = idna.encode(label, uts46=True, std3_rules=True, transitional=False).decode()
        except idna.IDNAError as err:
            raise InvalidName(f"IDNA: {_shorten(str(err), 100)}") from None
    if len(label) > MAX_LABEL:
        raise InvalidName(f"label longer than {MAX_LABEL} octets: {_quote(label)}")
    return label


def _describe(char: str) -> str:
    """A character for an error message: `'*'`, `' ' (space)`, `'\\x01' (control)`."""
    if char in _CHAR_NAMES:
        return f"{char!r} ({_CHAR_NAMES[char]})"
    if char.isspace():
        return f"{char!r} (whitespace)"
    if not char.isprintable():
        return f"{char!r} (control)"
    return repr(char)


def _quote(text: str) -> str:
    """`text` quoted for an error message, cut to about 40 characters."""
    return repr(_shorten(text, 40))


def _shorten(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
