"""`Resolver`: the engines behind one object, with timeouts, tries, a concurrency bound
and the system-resolver fallback policy."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Container, Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import TYPE_CHECKING

from resolver.engines import Done, Engine, ServerStats
from resolver.engines.aiodns import AiodnsEngine
from resolver.engines.cares import CaresEngine
from resolver.engines.system import SYSTEM_TYPES, SystemEngine
from resolver.engines.wire import WireEngine
from resolver.model import ConfigError, InvalidInput, Query, RecordType, Result, Status
from resolver.sources import Input, parse_item
from resolver.stream import Progress, RateLimit, ResultStream, Window

if TYPE_CHECKING:
    import aiodns

__all__ = ["EngineName", "Fallback", "Resolver", "parse_nameserver"]

log = logging.getLogger(__name__)


class EngineName(enum.Enum):
    """Which engine asks DNS; see the README for how they compare."""

    WIRE = "wire"  #: DNS over UDP on the event loop; hands what it cannot finish to c-ares
    CARES = "cares"  #: c-ares (pycares) for every query
    AIODNS = "aiodns"  #: aiodns' `DNSResolver.query_dns` for every query (see the README)


class Fallback(enum.Enum):
    """When the system resolver is consulted: the hosts file after NXDOMAIN or SERVFAIL,
    also getaddrinfo/getnameinfo after TIMEOUT or ERROR (never more DNS queries for a
    name DNS answered, never a search domain); see the README."""

    AUTO = "auto"  #: after a DNS failure or NXDOMAIN, unless nameservers are pinned
    ALWAYS = "always"  #: after a DNS failure or NXDOMAIN, even with pinned nameservers
    NEVER = "never"  #: DNS only
    ONLY = "only"  #: the system resolver only (A, AAAA and PTR)


#: DNS outcomes after which the fallback reads the hosts file (no DNS query).
FALLBACK_AFTER = frozenset({Status.NXDOMAIN, Status.TIMEOUT, Status.SERVFAIL, Status.ERROR})
#: DNS outcomes after which it also asks getaddrinfo/getnameinfo: DNS gave no answer at
#: all. After NXDOMAIN or SERVFAIL the system's DNS would only be asked the same again.
SYSTEM_AFTER = frozenset({Status.TIMEOUT, Status.ERROR})

DEFAULT_TIMEOUT = 2.0
DEFAULT_TRIES = 5
DEFAULT_CONCURRENCY = 250


def parse_nameserver(text: str) -> str:
    """`"127.0.0.1"`, `"127.0.0.1:5300"`, `"::1"`, `"[::1]:5300"` -> c-ares' `host:port` form.

    An IPv6 address with a port goes in brackets. Refused as ambiguous (`ConfigError`):
    an unbracketed IPv6 address whose last group could be a port (`::1:5310`,
    `2001:db8::1:53`: decimal digits after a `:` that leave an address without them), as
    Go's `SplitHostPort` refuses it; and an address in the deprecated IPv4-compatible
    range `::/96` (but `::` and `::1`), which is what such a slip usually spells.
    """
    text = text.strip()
    host, port = text, "53"
    bracketed = text.startswith("[")
    if bracketed:
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"bad nameserver {text!r}: expected [IPv6]:PORT")
        port = rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = ip_address(host)
    except ValueError:
        raise ConfigError(
            f"bad nameserver {text!r}: give an IP address, optionally with :PORT"
        ) from None
    if isinstance(address, IPv6Address):
        _check_ipv6_nameserver(text, host, address, bracketed)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"bad nameserver {text!r}: port must be 1-65535")
    return f"[{address}]:{int(port)}" if address.version == 6 else f"{address}:{int(port)}"


def _check_ipv6_nameserver(text: str, host: str, address: IPv6Address, bracketed: bool) -> None:
    """Refuse the IPv6 nameservers that `parse_nameserver` calls ambiguous."""
    head, _, last = host.rpartition(":")
    port_like = last.isdigit() and 0 < int(last) < 65536 and _is_ipv6(head)
    compatible = int(address) >> 32 == 0 and int(address) > 1  # in ::/96, not :: or ::1
    if port_like and not bracketed:
        also = "" if compatible else f", or [{host}] for the address {address} on port 53"
        raise ConfigError(
            f"bad nameserver {text!r}: is :{last} a port? An IPv6 address with a port goes "
            f"in brackets: [{head}]:{last}{also}"
        )
    if compatible:
        example = f"[{head}]:{last}" if port_like else "[::1]:5310"
        raise ConfigError(
            f"bad nameserver {text!r}: {address} is an IPv4-compatible address (::/96, "
            f"deprecated), not a nameserver's: an IPv6 address with a port goes in "
            f"brackets ({example}), an IPv4 address as it is ({IPv4Address(int(address))})"
        )


def _is_ipv6(text: str) -> bool:
    try:
        return ip_address(text).version == 6
    except ValueError:
        return False


class Resolver:
    """Resolve names through DNS (the wire or the c-ares engine) with a system-resolver
    fallback.

    ```python
    async with Resolver(nameservers=["127.0.0.1:5300"]) as r:
        result = await r.lookup("example.com", "AAAA")
        async for result in r.resolve_many(["a.example", "b.example"], types=["A"]):
            ...
    ```

    Args:
        nameservers: `HOST[:PORT]` IP addresses, each asked once however often listed;
            None uses the system's (/etc/resolv.conf).
        timeout: the most seconds an attempt waits for its reply (the wire engine
            retransmits sooner once it knows a server's round-trip time; see the README).
        tries: attempts per query in all, each on the next nameserver (timeouts,
            SERVFAIL, REFUSED and malformed replies are retried; see the README). Not
            given: 5, and with the wire engine more lost attempts (up to 12) are made
            again while a server's measured loss rate makes losing all five likely.
        concurrency: the most queries in flight, over all streams and lookups; each
            stream also holds at most this many results not yet consumed.
        fallback: when the system resolver is asked (`Fallback` or its value).
        engine: which engine asks DNS (`EngineName` or its value); default wire, or
            aiodns when `aiodns_resolver` is given.
        rate: at most this many queries per second (None: no limit).
        deadline: seconds after which a query ends as TIMEOUT whatever tries remain
            (None: only timeout and tries bound it).
        aiodns_resolver: an `aiodns.DNSResolver` of the application's to ask (the aiodns
            engine); its own nameservers, timeout and tries then apply (for `fallback`
            "auto" they count as the system's), and it is left open by `aclose()`.

    A DNS outcome is never raised: NXDOMAIN, SERVFAIL, timeouts and bad names are
    `Result`s. Only bad configuration raises (`ConfigError`).
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        tries: int | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        fallback: Fallback | str = Fallback.AUTO,
        engine: EngineName | str | None = None,
        rate: float | None = None,
        deadline: float | None = None,
        aiodns_resolver: aiodns.DNSResolver | None = None,
    ) -> None:
        if timeout <= 0:
            raise ConfigError("timeout must be positive")
        if tries is not None and tries < 1:
            raise ConfigError("tries must be at least 1")
        if concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        if rate is not None and rate <= 0:
            raise ConfigError("rate must be positive")
        if deadline is not None and deadline <= 0:
            raise ConfigError("deadline must be positive")
        self.deadline = deadline
        try:
            self.fallback = Fallback(fallback)
        except ValueError:
            choices = ", ".join(f.value for f in Fallback)
            raise ConfigError(f"unknown fallback {fallback!r} (choose: {choices})") from None
        if engine is None:
            engine = EngineName.WIRE if aiodns_resolver is None else EngineName.AIODNS
        try:
            self.engine = EngineName(engine)
        except ValueError:
            choices = ", ".join(e.value for e in EngineName)
            raise ConfigError(f"unknown engine {engine!r} (choose: {choices})") from None
        if aiodns_resolver is not None:
            if self.engine is not EngineName.AIODNS:
                raise ConfigError(f"an aiodns_resolver is asked by the aiodns engine, not {engine}")
            if nameservers:
                raise ConfigError("give the nameservers to the aiodns resolver, not to both")
        self._aiodns_resolver = aiodns_resolver
        if isinstance(nameservers, str):
            raise ConfigError("nameservers must be a list of addresses, not one string")
        # Each server once, in the order first named (`1.2.3.4` and `1.2.3.4:53` are one).
        listed = dict.fromkeys(parse_nameserver(n) for n in nameservers or ())
        self.nameservers = list(listed) or None
        self.timeout = timeout
        self.tries = DEFAULT_TRIES if tries is None else tries
        #: Not given: the wire engine may make more attempts where it measures heavy loss.
        self.adapt_tries = tries is None
        self.concurrency = concurrency
        #: Places for queries in flight (each stream bounds its unconsumed results itself).
        self.window = Window(concurrency)
        #: Paces queries sent (not invalid lines) when a rate is set.
        self.rate_limit = RateLimit(rate) if rate else None
        self._engines: list[Engine] = []
        self._dns: WireEngine | CaresEngine | AiodnsEngine | None = None  # the one asking DNS
        self._route: Callable[[Query, Done], None] | None = None  # set by route()
        self._closed = False

    async def __aenter__(self) -> Resolver:
        self.route()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release sockets and threads; idempotent. Lookups still running end as ERROR."""
        self._closed = True
        self._route = self._refuse
        # The wire engine first: it answers what it holds itself, c-ares is still open.
        for engine in self._engines:
            await engine.aclose()

    def route(self) -> Callable[[Query, Done], None]:
        """The function a query is submitted through (`submit` without the look-up): it
        starts the engines on the running loop the first time, and decides once how queries
        are routed. A bulk caller (`ResultStream`) takes it once per batch."""
        if self._route is not None:
            return self._route
        system = SystemEngine()
        dns: WireEngine | CaresEngine | AiodnsEngine
        if self.engine is EngineName.AIODNS:
            dns = AiodnsEngine(
                self.nameservers,
                timeout=self.timeout,
                tries=self.tries,
                resolver=self._aiodns_resolver,
            )
            self._engines = [dns, system]
        else:
            cares = dns = CaresEngine(self.nameservers, timeout=self.timeout, tries=self.tries)
            if self.engine is EngineName.WIRE:
                dns = WireEngine(
                    self.nameservers or cares.servers,
                    timeout=self.timeout,
                    tries=self.tries,
                    fallback=cares,
                    adapt_tries=self.adapt_tries,
                    window=self.concurrency,
                )
            self._engines = [dns, cares, system] if dns is not cares else [cares, system]
        self._dns = dns
        falls_back = self.fallback is Fallback.ALWAYS or (
            self.fallback is Fallback.AUTO and self.nameservers is None
        )

        def dns_then_system(query: Query, done: Done) -> None:
            if query.type not in SYSTEM_TYPES:
                dns.submit(query, done)
                return

            def after_dns(dns_result: Result) -> None:
                if dns_result.status not in FALLBACK_AFTER or self._closed:
                    done(dns_result)
                    return

                def pick(result: Result | None) -> None:
                    if result is None or result.status is not Status.NOERROR:
                        done(dns_result)
                    else:  # elapsed: from the DNS query's start to this answer
                        done(result._replace(elapsed=dns_result.elapsed + result.elapsed))

                local = system.from_hosts(query)
                if local is not None or dns_result.status not in SYSTEM_AFTER:
                    log.debug(
                        "%s %s: %s from DNS, the hosts file %s",
                        query.name,
                        query.type.name,
                        dns_result.status.value,
                        "answers" if local is not None else "has nothing",
                    )
                    pick(local)
                else:
                    log.debug(
                        "%s %s: %s from DNS, asking the system resolver",
                        query.name,
                        query.type.name,
                        dns_result.status.value,
                    )
                    system.submit(query, pick)

            dns.submit(query, after_dns)

        route: Callable[[Query, Done], None]
        if self.fallback is Fallback.ONLY:
            route = system.submit
        elif falls_back:
            route = dns_then_system
        else:
            route = dns.submit  # the bulk path: straight to the engine
        self._route = route if self.deadline is None else self._bounded(route, self.deadline)
        return self._route

    @staticmethod
    def _bounded(
        route: Callable[[Query, Done], None], deadline: float
    ) -> Callable[[Query, Done], None]:
        """`route`, with a TIMEOUT result for any query not answered within `deadline`;
        an answer that comes later is dropped (the engine's own tries still end it)."""
        loop = asyncio.get_running_loop()
        error = f"no answer within the {deadline:g} s deadline"

        def submit(query: Query, done: Done) -> None:
            def once(result: Result) -> None:
                if not timer.cancelled():
                    timer.cancel()
                    done(result)

            def expire() -> None:
                once(Result.for_query(query, Status.TIMEOUT, error=error, elapsed=deadline))

            timer = loop.call_later(deadline, expire)
            route(query, once)

        return submit

    def server_stats(self) -> list[ServerStats]:
        """Per-nameserver counters of the engine that asks DNS, wire or c-ares (attempts,
        replies, failures, setting aside, latency); empty before the first query, and with the
        aiodns engine (c-ares keeps its own). The queries the wire engine hands to c-ares
        are not counted."""
        return [] if self._dns is None else self._dns.stats()

    @staticmethod
    def _refuse(query: Query, done: Done) -> None:
        raise RuntimeError("this Resolver is closed")

    def submit(self, query: Query, done: Done) -> None:
        """Resolve `query` and call `done(result)` once, from the loop (the stream path:
        no Task or Future). The caller bounds concurrency (see `window`)."""
        (self._route or self.route())(query, done)

    async def lookup(
        self, name: str | bytes | Query, type: str | int | RecordType = RecordType.A
    ) -> Result:
        """Resolve one name (or IP literal, which means PTR) and return its `Result`.

        `name` is text or bytes (UTF-8), as a line of a source is; `type` a name
        (`"AAAA"`), a number (`28`) or a `RecordType`. Bad input gives an INVALID result
        rather than an exception (an unknown type raises `ConfigError`). An IP literal is
        always a reverse (PTR) lookup, whatever `type` says.
        """
        qtype = RecordType.parse(type)
        items = parse_item(name, 0, [qtype])
        if not items:  # a blank line or a comment (bytes, then, in UTF-8): nothing to ask
            text = name.decode() if isinstance(name, bytes | bytearray) else str(name)
            items = [InvalidInput(text, qtype, "empty name")]
        query = items[0]
        if isinstance(query, InvalidInput):
            return Result.for_invalid(query)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()

        def done(result: Result) -> None:
            if not future.done():
                future.set_result(result)

        await self.window.take()
        try:
            if self.rate_limit is not None:
                await self.rate_limit.acquire()
            self.submit(query, done)
            return await future
        finally:
            self.window.give()

    def resolve_many(
        self,
        source: Input,
        types: str | int | RecordType | Iterable[str | int | RecordType] = (RecordType.A,),
        *,
        share: tuple[int, int] = (0, 1),
        ordered: bool = False,
        unique: bool = False,
        skip: Container[tuple[int, str]] = (),
        on_progress: Progress | None = None,
        progress_every: float = 1.0,
    ) -> ResultStream:
        """Resolve every line of `source`; iterate the returned stream for the results,
        one per (line, type), in completion order.

        `source` is an iterable or async iterable of lines (`str`, or `bytes` in UTF-8; or
        `Query` objects), or an `asyncio.Queue` of them ended by `None` (or, on Python
        3.13+, `Queue.shutdown()`). `types`: the record types to ask each line, as
        `RecordType.parse_many` takes them (`"MX"`, `"A,AAAA"`, `[1, "AAAA"]`); none at
        all raises `ConfigError`.
        Blank lines and `#` comments are skipped; bad lines give INVALID results.
        `share=(k, n)` resolves only lines k+1, k+1+n, ... (for splitting an input
        between n processes; line numbers stay those of the whole input).
        `ordered=True` yields results in input order: a result waits for those before it,
        holding its slot, so memory stays within `concurrency` results (a slow query
        holds up the rest). `unique=True` asks each (name, type) once and answers every
        line that repeats it from that one lookup (remembering every name seen).
        `skip` holds (line, type name) pairs not to resolve again (see `--resume`).
        `on_progress(counters)` is called on the loop every `progress_every` seconds while
        the stream runs, and once when it has ended (see `Counters`; `stream.counters()`
        gives the same at any time).
        """
        k, n = share
        if not 0 <= k < n:
            raise ConfigError(f"bad share {share!r}: need 0 <= k < n")
        if progress_every <= 0:
            raise ConfigError("progress_every must be positive")
        asked = RecordType.parse_many(types)
        return ResultStream(
            self,
            source,
            asked,
            share,
            ordered=ordered,
            unique=unique,
            skip=skip,
            on_progress=on_progress,
            progress_every=progress_every,
        )
