"""Test tooling: an in-process DNS server on loopback with faults, and a Knot DNS runner."""

from resolver.testing.server import (
    EXAMPLE_ORIGIN,
    EXAMPLE_ZONE,
    Fault,
    LoopbackDNSServer,
    Message,
    MessageError,
    Question,
    ReceivedQuery,
    Record,
    Transport,
    Zone,
    decode_message,
    encode_query,
    serve_in_thread,
    to_zone_file,
)

__all__ = [
    "EXAMPLE_ORIGIN",
    "EXAMPLE_ZONE",
    "Fault",
    "LoopbackDNSServer",
    "Message",
    "MessageError",
    "Question",
    "ReceivedQuery",
    "Record",
    "Transport",
    "Zone",
    "decode_message",
    "encode_query",
    "serve_in_thread",
    "to_zone_file",
]
