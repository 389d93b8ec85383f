"""Tests for `resolver.names`: input lines to queries, name normalization."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from resolver.model import InvalidInput, Query, RecordType
from resolver.names import InvalidName, normalize_name, parse_line, parse_lines, reverse_name

A, AAAA, MX, PTR, TXT = (
    RecordType.A,
    RecordType.AAAA,
    RecordType.MX,
    RecordType.PTR,
    RecordType.TXT,
)

NAME_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
NAME_254 = NAME_253 + "d"
V6_REVERSE = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("  example.com\t", "example.com"),
        ("a", "a"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.DE", "xn--bcher-kva.de"),
        ("straße.de", "xn--strae-oqa.de"),  # non-transitional: ß is kept
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("bücher\u3002de\uff0e", "xn--bcher-kva.de"),  # UTS #46 full stops
        (
            "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com",
            "example.com",
        ),  # full-width letters map to ASCII
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("XN--BCHER-KVA.de", "xn--bcher-kva.de"),
        ("_sip._tcp.Example.com", "_sip._tcp.example.com"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("s1._domainkey.example.com", "s1._domainkey.example.com"),
        ("-a-.example", "-a-.example"),  # hyphen placement is not checked
        ("999.1.1.1", "999.1.1.1"),  # not an address: a name
        ("1.2.3", "1.2.3"),
        ("01.2.3.4", "01.2.3.4"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
        (NAME_253, NAME_253),
        (NAME_253 + ".", NAME_253),
        (NAME_253.upper(), NAME_253),
    ],
)
def test_normalize_name(text: str, expected: str) -> None:
    assert normalize_name(text) == expected
    assert normalize_name(expected) == expected


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty name"),
        ("   ", "empty name"),
        (".", "the root '.' is not a host name"),
        ("..", "empty label"),
        ("a..b", "empty label"),
        (".a", "empty label"),
        ("a.b..", "empty label"),
        ("a" * 64, f"label longer than 63 octets: '{'a' * 39}…'"),
        ("x." + "a" * 64 + ".com", f"label longer than 63 octets: '{'a' * 39}…'"),
        (NAME_254, "name longer than 253 octets"),
        ("a." * 127 + "a", "name longer than 253 octets"),
        ("x" * 2**20, "name longer than 253 octets"),
        ("a b", "invalid character ' ' (space)"),
        ("example.com foo", "invalid character ' ' (space)"),
        ("a\tb", "invalid character '\\t' (tab)"),
        ("a\nb", "invalid character '\\n' (line feed)"),
        ("a\rb", "invalid character '\\r' (carriage return)"),
        ("a\x01b", "invalid character '\\x01' (control)"),
        ("a\x7fb", "invalid character '\\x7f' (control)"),
        ("a\x85b", "invalid character '\\x85' (whitespace)"),
        ("a\u3000b", "invalid character '\\u3000' (whitespace)"),
        ("a\x00b", "NUL byte in name"),
        ("example.com\x00", "NUL byte in name"),
        ("a b\x00", "NUL byte in name"),
        ("*.example.com", "invalid character '*'"),
        ("a/b", "invalid character '/'"),
        ("user@example.com", "invalid character '@'"),
        ("a!b", "invalid character '!'"),
        ("a,b", "invalid character ','"),
        ("a#b", "invalid character '#'"),
        ("bü*.de", "invalid character '*'"),  # checked before IDNA, in any label
    ],
)
def test_normalize_name_rejects(text: str, error: str) -> None:
    with pytest.raises(InvalidName) as info:
        normalize_name(text)
    assert str(info.value) == error


@pytest.mark.parametrize(
    "text",
    [
        "ü_x.de",  # IDNA2008 has no underscore
        "a\uff01b.de",  # full-width "!" would map to "!"
        "\u2488.com",  # "⒈" would map to "1."
        "ü" * 60 + ".de",  # A-label longer than 63 octets
        "\u0301a.de",  # leading combining mark
        "-ü.de",
    ],
)
def test_normalize_name_rejects_idna(text: str) -> None:
    with pytest.raises(InvalidName, match=r"^IDNA: ") as info:
        normalize_name(text)
    assert len(str(info.value)) <= 110


def test_invalid_name_is_value_error() -> None:
    assert issubclass(InvalidName, ValueError)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (IPv4Address("192.0.2.1"), "1.2.0.192.in-addr.arpa"),
        (IPv4Address("0.0.0.0"), "0.0.0.0.in-addr.arpa"),
        (IPv6Address("2001:db8::1"), V6_REVERSE),
    ],
)
def test_reverse_name(address: IPv4Address | IPv6Address, expected: str) -> None:
    assert reverse_name(address) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "\t", "\r", "#", "# comment", "   # indented", "\t#x", " # x \r", "\u3000"]
)
def test_parse_line_skips_blank_and_comment_lines(text: str) -> None:
    assert parse_line(text, 1, [A, AAAA]) == []


@pytest.mark.parametrize(
    ("text", "clean", "name"),
    [
        ("example.com", "example.com", "example.com"),
        ("Example.COM.\r", "Example.COM.", "example.com"),
        ("example.com   # note", "example.com   # note", "example.com"),
        ("example.com\t#note\r", "example.com\t#note", "example.com"),
        ("  bücher.de  ", "  bücher.de  ", "xn--bcher-kva.de"),
        ("999.1.1.1", "999.1.1.1", "999.1.1.1"),
        ("1.2.3.4.", "1.2.3.4.", "1.2.3.4"),  # a trailing dot makes a name, as in dig
    ],
)
def test_parse_line_name(text: str, clean: str, name: str) -> None:
    assert parse_line(text, 7, [A]) == [Query(name=name, type=A, text=clean, line=7)]


def test_parse_line_one_query_per_type_in_order() -> None:
    assert parse_line("Example.com", 3, [AAAA, A, MX]) == [
        Query(name="example.com", type=AAAA, text="Example.com", line=3),
        Query(name="example.com", type=A, text="Example.com", line=3),
        Query(name="example.com", type=MX, text="Example.com", line=3),
    ]


def test_parse_line_no_types() -> None:
    assert parse_line("example.com", 1, []) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("bad name\r", "invalid character ' ' (space)"),
        ("a..b", "empty label"),
        ("a#b", "invalid character '#'"),
        ("nul\x00.example.com", "NUL byte in name"),
    ],
)
def test_parse_line_invalid_name_one_row_per_type(text: str, error: str) -> None:
    clean = text.removesuffix("\r")
    assert parse_line(text, 9, [A, TXT]) == [
        InvalidInput(text=clean, type=A, error=error, line=9),
        InvalidInput(text=clean, type=TXT, error=error, line=9),
    ]


@pytest.mark.parametrize(
    ("text", "name", "address"),
    [
        ("192.0.2.1", "1.2.0.192.in-addr.arpa", IPv4Address("192.0.2.1")),
        ("  192.0.2.1  # router\r", "1.2.0.192.in-addr.arpa", IPv4Address("192.0.2.1")),
        ("2001:db8::1", V6_REVERSE, IPv6Address("2001:db8::1")),
        ("2001:DB8:0:0:0:0:0:1", V6_REVERSE, IPv6Address("2001:db8::1")),
        ("[2001:db8::1]", V6_REVERSE, IPv6Address("2001:db8::1")),
        ("::1", "1" + ".0" * 31 + ".ip6.arpa", IPv6Address("::1")),
        (
            "::ffff:192.0.2.1",
            "1.0.2.0.0.0.0.c.f.f.f.f" + ".0" * 20 + ".ip6.arpa",
            IPv6Address("::ffff:c000:201"),
        ),
    ],
)
@pytest.mark.parametrize("types", [[A], [A, AAAA, MX], []])
def test_parse_line_ip_literal_is_one_ptr(
    text: str, name: str, address: IPv4Address | IPv6Address, types: list[RecordType]
) -> None:
    clean = text.removesuffix("\r")
    assert parse_line(text, 2, types) == [
        Query(name=name, type=PTR, text=clean, line=2, address=address)
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("fe80::1%eth0", "zone id not supported: 'fe80::1%eth0'"),
        ("fe80::1%", "zone id not supported: 'fe80::1%'"),
        ("[fe80::1%25eth0]", "zone id not supported: '[fe80::1%25eth0]'"),
        ("[192.0.2.1]", "only IPv6 goes in brackets: '[192.0.2.1]'"),
        ("[example.com]", "invalid IPv6 literal: '[example.com]'"),
        ("[]", "invalid IPv6 literal: '[]'"),
    ],
)
def test_parse_line_bad_ip_literal_is_one_invalid_ptr(text: str, error: str) -> None:
    assert parse_line(text, 4, [A, AAAA]) == [
        InvalidInput(text=text, type=PTR, error=error, line=4)
    ]


@pytest.mark.parametrize("text", ["x" * 2**20, "a." * 2**19, ":" * 2**20, "[" + "1:" * 2**19 + "]"])
def test_parse_line_rejects_huge_line_quickly(text: str) -> None:
    start = time.perf_counter()
    rows = parse_line(text, 1, [A])
    assert time.perf_counter() - start < 1.0
    assert len(rows) == 1
    assert isinstance(rows[0], InvalidInput)


# Property tests.

TYPES = st.lists(st.sampled_from(RecordType), max_size=3)
LINES = st.text()  # decoded UTF-8: no surrogates
ANY_CHARS = st.text(st.characters() | st.characters(categories=["Cs"]))
LABEL = st.text("abcXYZ019-_üßÉ例*. \t\x00", max_size=70)
NAMEISH = st.builds(
    "{}{}{}{}{}".format,
    st.sampled_from(["", " ", "\t"]),
    st.lists(LABEL, min_size=1, max_size=6).map(".".join),
    st.sampled_from(["", "."]),
    st.sampled_from(["", "  # comment", "#x"]),
    st.sampled_from(["", "\r"]),
)
PROPERTY = settings(max_examples=300, deadline=None)


def assert_valid_name(name: str) -> None:
    """`name` obeys the rules a normalized name must obey, and is a fixed point."""
    assert 1 <= len(name) <= 253
    for label in name.split("."):
        assert re.fullmatch(r"[a-z0-9_-]{1,63}", label), label
    assert normalize_name(name) == name


def check_rows(text: str, types: Sequence[RecordType], rows: list[Query | InvalidInput]) -> None:
    """The invariants of `parse_line(text, 5, types)`."""
    clean = text.removesuffix("\n").removesuffix("\r")
    assert all(row.text == clean and row.line == 5 for row in rows)
    if not rows:
        assert not types or not clean.strip() or "#" in clean
    elif isinstance(rows[0], Query) and rows[0].address is not None:
        assert rows == [
            Query(reverse_name(rows[0].address), PTR, clean, 5, address=rows[0].address)
        ]
    elif [row.type for row in rows] != list(types):  # a bad IP literal: one invalid PTR
        assert len(rows) == 1
        assert isinstance(rows[0], InvalidInput)
        assert rows[0].type is PTR
    elif isinstance(rows[0], Query):
        assert all(isinstance(row, Query) and row.name == rows[0].name for row in rows)
        assert_valid_name(rows[0].name)
    else:
        assert all(isinstance(row, InvalidInput) and row.error == rows[0].error for row in rows)
        assert rows[0].error


@PROPERTY
@given(LINES, TYPES)
def test_parse_line_any_line(text: str, types: list[RecordType]) -> None:
    check_rows(text, types, parse_line(text, 5, types))


@PROPERTY
@given(ANY_CHARS, TYPES)
def test_parse_line_any_characters(text: str, types: list[RecordType]) -> None:
    check_rows(text, types, parse_line(text, 5, types))


@PROPERTY
@given(NAMEISH, TYPES)
def test_parse_line_name_like(text: str, types: list[RecordType]) -> None:
    check_rows(text, types, parse_line(text, 5, types))


@PROPERTY
@given(NAMEISH | ANY_CHARS)
def test_normalize_name_valid_or_invalid_name(text: str) -> None:
    try:
        name = normalize_name(text)
    except InvalidName:
        return
    assert_valid_name(name)


@PROPERTY
@given(st.ip_addresses(), st.booleans(), TYPES)
def test_parse_line_any_address(
    address: IPv4Address | IPv6Address, bracket: bool, types: list[RecordType]
) -> None:
    text = f"[{address}]" if bracket and address.version == 6 else str(address)
    assert parse_line(text, 5, types) == [
        Query(ip_address(text.strip("[]")).reverse_pointer, PTR, text, 5, address=address)
    ]


@pytest.mark.parametrize("text", ["192.0.2.0/24", "2001:db8::/64", "10.0.0.1/32"])
def test_cidr_ranges_are_refused_clearly(text: str) -> None:
    items = parse_line(text, 3, [RecordType.A, RecordType.AAAA])
    assert len(items) == 1
    bad = items[0]
    assert isinstance(bad, InvalidInput)
    assert bad.type is RecordType.PTR
    assert bad.line == 3
    assert bad.error.startswith("CIDR ranges are not expanded")


@PROPERTY
@given(
    st.text(alphabet="abcdefXYZ0129_-.", min_size=1, max_size=300)
    | st.ip_addresses(v=4).map(str)
    | st.lists(st.text(alphabet="aB0-", min_size=1, max_size=70), max_size=6).map(".".join),
    TYPES,
)
@example(".".join(["x" * 63] * 3 + ["Y" * 62]), [A])  # 254 octets: too long
@example(".".join(["x" * 63] * 3 + ["Y" * 61]) + ".", [A])  # 253 and the root: fine
@example("dead.BEEF", [A])  # hex digits and dots, yet not an IP literal
@example("192.0.2.1", [A, AAAA])  # an IPv4 literal: one PTR query
@example("192.0.2.01", [A])  # a leading zero: a name
def test_plain_names_take_the_fast_path_to_the_same_rows(
    text: str, types: list[RecordType]
) -> None:
    """Plain ASCII names skip most checks; a leading space sends the same name through
    all of them: the rows must agree (but for the text, kept as given)."""
    fast = parse_line(text, 5, types)
    slow = parse_line(f" {text}", 5, types)

    def shape(rows: list[Query | InvalidInput]) -> list[tuple[object, ...]]:
        return [
            (type(r), r.type, *((r.name, r.address) if isinstance(r, Query) else (r.error,)))
            for r in rows
        ]

    assert shape(fast) == shape(slow)
    assert all(row.text == text for row in fast)


@PROPERTY
@given(st.lists(LINES | NAMEISH | st.ip_addresses().map(str), max_size=6), TYPES, st.integers(1, 9))
@example(
    [".".join(["x" * 63] * 3 + ["y" * n]) + dot for n in (61, 62) for dot in ("", ".")], [A], 1
)
def test_parse_lines_is_parse_line_for_each(
    texts: list[str], types: list[RecordType], first: int
) -> None:
    expected = [q for n, text in enumerate(texts, first) for q in parse_line(text, n, types)]
    assert parse_lines(texts, first, types) == expected
