"""1:1 throughput: pairs in direct chats, one sender each, sending as fast as acks allow.

chatcore is driven over the wire by the lean driver (or the Go load generator with
``--loadgen go``), as in the fanout scenario, so the load generator's core is not
what limits it; python-socketio keeps its own client.
"""

from __future__ import annotations

from benchmarks.loadgen import Round
from benchmarks.results import Params
from benchmarks.scenarios._common import Bench, measure_round, start_wire

__all__ = ["run"]

TARGETS = ("chatcore-memory", "chatcore-sqlite", "socketio")
WINDOW = 4
"""Sends in flight per sender."""


async def measure(bench: Bench, kind: str, pairs: int) -> dict[str, float]:
    async with bench.fleet() as fleet:
        target, workers = await start_wire(bench, fleet, kind, [2] * pairs, what=f"direct: {kind}")
        spec = Round(duration_s=bench.duration_s, window=WINDOW)
        metrics = await measure_round(
            bench, fleet, target, workers, spec, what=f"direct: {kind}", profile_as="direct"
        )
        await fleet.stop_workers(workers)
    return metrics


async def run(bench: Bench) -> None:
    pairs = 10 if bench.quick else 100
    for _ in range(bench.repeats):
        for kind in TARGETS:
            metrics = await measure(bench, kind, pairs)
            params: Params = {"pairs": pairs, "window": WINDOW, "loadgen": bench.loadgen_for(kind)}
            bench.results.point("direct", kind, params).add(metrics)
