"""Test tooling, one module per job, importable without pytest.

- `message`: a small DNS codec for tests (`encode_query`, `decode_message`, `Message`).
- `zone`: `Zone`, the records a server holds, and `to_zone_file` for Knot DNS.
- `server`: `LoopbackDNSServer`, authoritative on loopback, with `Fault` injection.
- `thread`: `serve_in_thread`, a server on its own loop for synchronous code.
- `demo`: `EXAMPLE_ZONE`, the zone of `resolver demo`.
- `knot`: `KnotServer`, a throw-away Knot DNS for tests and benchmarks (import it itself).
- `pytest_plugin`: fixtures (`pytest_plugins = ["resolver.testing.pytest_plugin"]`;
  needs the `test` extra).
"""

from resolver.testing.demo import EXAMPLE_ORIGIN, EXAMPLE_ZONE
from resolver.testing.message import (
    Message,
    MessageError,
    Question,
    Record,
    decode_message,
    encode_query,
)
from resolver.testing.server import Fault, LoopbackDNSServer, ReceivedQuery, Transport
from resolver.testing.thread import serve_in_thread
from resolver.testing.zone import Zone, to_zone_file

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
