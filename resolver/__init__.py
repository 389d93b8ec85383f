"""resolver: an asyncio bulk DNS resolver.

```python
async with Resolver(nameservers=["127.0.0.1:5300"]) as r:
    result = await r.lookup("example.com", "A")
    async for result in r.resolve_many(open("hosts.txt"), types=["A", "AAAA"]):
        print(result.name, result.status, result.addresses)
```
"""

import logging

from resolver.core import Fallback, Resolver
from resolver.model import (
    CAA,
    MX,
    SOA,
    SRV,
    Answer,
    ConfigError,
    InvalidInput,
    Query,
    RecordType,
    ResolverError,
    Result,
    Source,
    Status,
)
from resolver.stream import Counters, ResultStream
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
    "Fallback",
    "InvalidInput",
    "Query",
    "RecordType",
    "Resolver",
    "ResolverError",
    "Result",
    "ResultStream",
    "Source",
    "Status",
    "__version__",
    "iter_resolve",
    "resolve",
]
