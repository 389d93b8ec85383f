"""The records that flow through the pipeline: `Query` in, `Result` out, and the output
record a `Result` becomes in every format (`COLUMNS`, `record()`)."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from socket import AF_INET as _AF_INET
from socket import inet_ntop as _ntop
from typing import Any, ClassVar, NamedTuple

from resolver.protocol import Type

__all__ = [
    "CAA",
    "COLUMNS",
    "FIELDS",
    "MX",
    "SOA",
    "SQLITE_COLUMNS",
    "SRV",
    "Answer",
    "Column",
    "ConfigError",
    "InputError",
    "InvalidInput",
    "OutputError",
    "Query",
    "RecordType",
    "ResolverError",
    "Result",
    "Source",
    "Status",
    "answer_text",
    "record",
    "sqlite_schema",
]


class ResolverError(Exception):
    """Root of the errors that fail a whole run (bad configuration, unusable files)."""


class ConfigError(ResolverError, ValueError):
    """A setting that cannot work, such as a nameserver that is not an IP address."""


class InputError(ResolverError, OSError):
    """An input that cannot be read (a missing file, a resolvers list with no server)."""


class OutputError(ResolverError, OSError):
    """An output that cannot be written, or would destroy what is there.

    When another setting would make it work, `option` names it in the library's terms
    (`"append"`, `"format"`, `"path"`) and `said_as(name)` gives the message with that
    setting called `name`, so a front end (the command line) can speak of its own flags.
    """

    #: How the library's own message names each option.
    TERMS: ClassVar[dict[str, str]] = {
        "append": "append=True",
        "format": "format=",
        "path": "a file path",
    }

    def __init__(self, message: str, option: str | None = None) -> None:
        """`message` says `{option}` where the option is named."""
        self.template, self.option = message, option
        super().__init__(self.said_as(self.TERMS[option]) if option else message)

    def said_as(self, name: str) -> str:
        """The message, with the option called `name`."""
        return self.template.replace("{option}", name)


class RecordType(enum.Enum):
    """DNS record types the resolver can ask for (value: the type's code)."""

    A = int(Type.A)
    NS = int(Type.NS)
    CNAME = int(Type.CNAME)
    SOA = int(Type.SOA)
    PTR = int(Type.PTR)
    MX = int(Type.MX)
    TXT = int(Type.TXT)
    AAAA = int(Type.AAAA)
    SRV = int(Type.SRV)
    CAA = int(Type.CAA)

    @classmethod
    def parse(cls, value: str | int | RecordType) -> RecordType:
        """`"aaaa"`, `28` or `RecordType.AAAA` -> `RecordType.AAAA`; raises `ConfigError`
        (a `ValueError`) naming the known types."""
        if isinstance(value, RecordType):
            return value
        if isinstance(value, str):
            found = cls.__members__.get(value.strip().upper())
        elif isinstance(value, int) and not isinstance(value, bool):
            found = next((t for t in cls if t.value == value), None)
        else:
            raise ConfigError(
                f"a record type is a name or a number, not {type(value).__name__}: {value!r}"
            )
        if found is None:
            known = ", ".join(f"{t.name} ({t.value})" for t in cls)
            raise ConfigError(f"unknown record type {value!r} (known: {known})")
        return found

    @classmethod
    def parse_many(
        cls, types: str | int | RecordType | Iterable[str | int | RecordType]
    ) -> list[RecordType]:
        """The types asked, each once, in order: a string is one type or several separated
        by commas (`"MX"`, `"A,AAAA"`, as `-t` takes them); a number or a `RecordType` is
        one type; any other iterable holds one type per item. Raises `ConfigError` for an
        unknown type and for none at all."""
        if isinstance(types, str):
            items: Iterable[str | int | RecordType] = [t for t in types.split(",") if t.strip()]
        elif isinstance(types, int | RecordType):
            items = [types]
        else:
            try:
                items = list(types)
            except TypeError:
                raise ConfigError(f"types must be record types, not {types!r}") from None
        parsed = list(dict.fromkeys(cls.parse(t) for t in items))
        if not parsed:
            raise ConfigError(f"no record type asked in {types!r}: ask at least one")
        return parsed


class Status(enum.Enum):
    """The outcome of one query; every outcome is a value, never an exception."""

    NOERROR = "NOERROR"  #: answers of the asked type were found
    NODATA = "NODATA"  #: the name exists but has no record of the asked type
    NXDOMAIN = "NXDOMAIN"  #: the name does not exist
    SERVFAIL = "SERVFAIL"  #: the server failed to answer
    REFUSED = "REFUSED"  #: the server refused to answer
    TIMEOUT = "TIMEOUT"  #: no answer within the timeout, after every try
    INVALID = "INVALID"  #: the input line cannot be asked (see `error`)
    ERROR = "ERROR"  #: anything else (see `error`)


class Source(enum.Enum):
    """Who produced the answer."""

    DNS = "dns"  #: a DNS server (through the wire or the c-ares engine)
    SYSTEM = "system"  #: the system resolver (getaddrinfo / getnameinfo)
    NONE = "none"  #: nobody was asked (invalid input)


@dataclass(frozen=True, slots=True)
class MX:
    """A mail exchanger."""

    preference: int
    exchange: str

    def __str__(self) -> str:
        return f"{self.preference} {self.exchange}"


@dataclass(frozen=True, slots=True)
class SRV:
    """A service location."""

    priority: int
    weight: int
    port: int
    target: str

    def __str__(self) -> str:
        return f"{self.priority} {self.weight} {self.port} {self.target}"


@dataclass(frozen=True, slots=True)
class SOA:
    """A zone's start of authority."""

    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int

    def __str__(self) -> str:
        return (
            f"{self.mname} {self.rname} {self.serial} {self.refresh} "
            f"{self.retry} {self.expire} {self.minimum}"
        )


@dataclass(frozen=True, slots=True)
class CAA:
    """A certification authority authorization."""

    flags: int
    tag: str
    value: str

    def __str__(self) -> str:
        return f'{self.flags} {self.tag} "{self.value}"'


#: One answer: an address (A/AAAA), a name (PTR/CNAME/NS), the text of a TXT record,
#: or a structured record whose `str()` is its presentation form.
Answer = IPv4Address | IPv6Address | str | MX | SRV | SOA | CAA


class Query(NamedTuple):
    """One thing to ask: a normalized name and a record type, with where it came from.

    `text` is the input exactly as given (without its newline) and `line` its 1-based
    line number in its source (0 when it did not come from a numbered source).
    For an IP literal, `name` is its reverse (`in-addr.arpa` / `ip6.arpa`) name,
    `type` is PTR and `address` holds the parsed address.
    """

    name: str
    type: RecordType
    text: str
    line: int = 0
    address: IPv4Address | IPv6Address | None = None


@dataclass(frozen=True, slots=True)
class InvalidInput:
    """An input line that cannot be asked, for one requested type; it still becomes a row."""

    text: str
    type: RecordType
    error: str
    line: int = 0


class Result(NamedTuple):
    """The outcome of one `Query`. Addresses are `ipaddress` objects (`.packed` = inet_pton).

    Immutable; `result._replace(field=value)` makes a changed copy.
    """

    query: str
    name: str
    type: RecordType
    status: Status
    answers: tuple[Answer, ...] = ()
    ttl: int | None = None
    cnames: tuple[str, ...] = ()
    source: Source = Source.DNS
    error: str | None = None
    line: int = 0
    elapsed: float = 0.0
    #: The nameserver (`host:port`) whose reply this is; for TIMEOUT and ERROR, the one
    #: asked last. None when no nameserver was (the system resolver, bad input, a
    #: `deadline` that struck first).
    server: str | None = None

    @property
    def ok(self) -> bool:
        """True when the query got a definitive DNS answer (NOERROR, NODATA or NXDOMAIN)."""
        return self.status in (Status.NOERROR, Status.NODATA, Status.NXDOMAIN)

    @property
    def addresses(self) -> tuple[IPv4Address | IPv6Address, ...]:
        """The answers that are IP addresses."""
        return tuple(a for a in self.answers if isinstance(a, IPv4Address | IPv6Address))

    def to_dict(self) -> dict[str, Any]:
        """The output record (the JSONL/CSV columns): plain str, int, float, None and lists
        of str, e.g. for `pandas.DataFrame([r.to_dict() for r in results])`."""
        return record(self)

    @classmethod
    def for_query(cls, query: Query, status: Status, **fields: object) -> Result:
        """A result for `query` with its identity fields filled in."""
        return cls(
            query=query.text,
            name=query.name,
            type=query.type,
            status=status,
            line=query.line,
            **fields,  # type: ignore[arg-type]
        )

    @classmethod
    def for_invalid(cls, bad: InvalidInput) -> Result:
        """The INVALID row for a line that could not be asked."""
        return cls(
            query=bad.text,
            name="",
            type=bad.type,
            status=Status.INVALID,
            source=Source.NONE,
            error=bad.error,
            line=bad.line,
        )


# The output record: one table of columns, from which every format is derived. The JSONL
# row, the CSV header and cells, the SQLite table (`sqlite_schema()`, `SQLITE_COLUMNS`) and
# the readers of `--resume` all take their columns from `COLUMNS`; the writers' fast JSONL
# row is held equal to `json.dumps(record(result))` by a property test. Addresses become
# text here (and packed bytes in the SQLite writer) and nowhere else.


def answer_text(answer: Answer) -> str:
    """An answer in presentation form (IPv4 through inet_ntop: twice as fast as str())."""
    if type(answer) is IPv4Address:
        return _ntop(_AF_INET, answer.packed)
    return str(answer)


@dataclass(frozen=True, slots=True)
class Column:
    """One field of the record: its name, its SQLite type, and its value for a result."""

    name: str
    sql: str
    value: Callable[[Result], Any]


#: The record's fields, in order.
COLUMNS: tuple[Column, ...] = (
    Column("query", "TEXT NOT NULL", lambda r: r.query),
    Column("name", "TEXT NOT NULL", lambda r: r.name),
    Column("type", "TEXT NOT NULL", lambda r: r.type.name),
    Column("status", "TEXT NOT NULL", lambda r: r.status.value),
    Column("answers", "TEXT NOT NULL", lambda r: [answer_text(a) for a in r.answers]),
    Column("ttl", "INTEGER", lambda r: r.ttl),
    Column("cnames", "TEXT NOT NULL", lambda r: list(r.cnames)),
    Column("source", "TEXT NOT NULL", lambda r: r.source.value),
    Column("server", "TEXT", lambda r: r.server),
    Column("error", "TEXT", lambda r: r.error),
    Column("line", "INTEGER NOT NULL", lambda r: r.line),
    Column("elapsed_ms", "REAL NOT NULL", lambda r: round(r.elapsed * 1000, 3)),
)
FIELDS = tuple(column.name for column in COLUMNS)
#: The columns of the SQLite table `results`: the record's, then the packed `addresses`.
SQLITE_COLUMNS = (*FIELDS, "addresses")


def record(result: Result) -> dict[str, Any]:
    """The output record of `result`: plain JSON types, answers as text."""
    return {column.name: column.value(result) for column in COLUMNS}


def sqlite_schema() -> str:
    """The SQL that makes the table `results` and its indexes (see `SqliteWriter`)."""
    columns = ",\n".join(f"    {c.name} {c.sql}" for c in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS results (\n{columns},\n    addresses BLOB\n);\n"
        "CREATE INDEX IF NOT EXISTS results_name ON results (name);\n"
        "CREATE UNIQUE INDEX IF NOT EXISTS results_line_type ON results (line, type)"
        " WHERE line > 0;\n"
    )
