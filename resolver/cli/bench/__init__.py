"""`resolver bench`: a load generator that measures DNS servers.

| module | job |
| --- | --- |
| `workload.py` | input lines (names, dnsperf data, query logs) to questions and one pass's order |
| `plan.py` | the schedule (closed loop, rate, ramp, replay) and what a worker is handed |
| `sender.py` | a worker process: its own UDP sender, timeouts, tries, per-interval tallies |
| `stats.py` | the latency histogram and the tallies workers report |
| `expect.py` | outcomes of replies, and the outcomes zone files expect |
| `run.py` | the parent: workers started together, their reports merged, the ramp judged |
| `report.py`, `html.py` | the text summary, JSON lines, the HTML report |
| `command.py` | the command line's options and exit statuses |
"""

from resolver.cli.bench.command import add_arguments, main
from resolver.cli.bench.run import Bench, BenchConfig, BenchResult

__all__ = ["Bench", "BenchConfig", "BenchResult", "add_arguments", "main"]
