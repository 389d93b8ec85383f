"""resolver: an asyncio bulk DNS resolver.

```python
async with Resolver(nameservers=["127.0.0.1:5300"]) as r:
    result = await r.lookup("example.com", "A")
    async for result in r.resolve_many(open("hosts.txt"), types=["A", "AAAA"]):
        print(result.name, result.status, result.addresses)
```
"""

import logging

from resolver.core import EngineName, Fallback, Resolver
from resolver.engines import ServerStats
from resolver.model import (
    CAA,
    MX,
    SOA,
    SRV,
    Answer,
    ConfigError,
    InputError,
    InvalidInput,
    OutputError,
    Query,
    RecordType,
    ResolverError,
    Result,
    Source,
    Status,
)
from resolver.sources import Input
from resolver.stream import Counters, Progress, ResultStream
from resolver.sync import iter_resolve, resolve

__version__ = "0.1.0"

# Silent unless the application configures logging: the CLI prints its own lines.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CAA",
    "MX",
    "SOA",
    "SRV",
    "Answer",
    "ConfigError",
    "Counters",
    "EngineName",
    "Fallback",
    "Input",
    "InputError",
    "InvalidInput",
    "OutputError",
    "Progress",
    "Query",
    "RecordType",
    "Resolver",
    "ResolverError",
    "Result",
    "ResultStream",
    "ServerStats",
    "Source",
    "Status",
    "__version__",
    "iter_resolve",
    "resolve",
]
