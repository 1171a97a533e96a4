"""Send → receive latency at fixed offered rates, as fractions of each target's maximum.

On one set of connections (direct pairs, one sender each): first a flat-out round
finds the maximum sustained rate (messages accepted *and* delivered to both members
per second: a server that accepts faster than it delivers is not sustaining that
rate), then one paced round per fraction of it.
Sends are scheduled open-loop and latency counts from the scheduled time.
chatcore is driven by the lean wire driver (or the Go load generator with
``--loadgen go``), python-socketio by its own client.
"""

from __future__ import annotations

from benchmarks.loadgen import Round
from benchmarks.results import Params
from benchmarks.scenarios._common import Bench, measure_round, start_wire, sustained

__all__ = ["FRACTIONS", "run"]

TARGETS = ("chatcore-memory", "chatcore-sqlite", "socketio")
FRACTIONS = (0.25, 0.5, 0.75, 0.9)
WINDOW = 4


async def measure(
    bench: Bench, kind: str, pairs: int, fractions: tuple[float, ...] = FRACTIONS
) -> dict[float, dict[str, float]]:
    """Metrics per fraction of the maximum (1.0: the flat-out round itself)."""
    out: dict[float, dict[str, float]] = {}
    async with bench.fleet() as fleet:
        target, workers = await start_wire(bench, fleet, kind, [2] * pairs, what=f"latency: {kind}")
        d = bench.duration_s
        drain = min(1.0, d / 2)
        flat_out = await measure_round(
            bench, fleet, target, workers, Round(duration_s=d, window=WINDOW, drain_s=drain),
            what=f"latency {kind}: maximum",
        )  # fmt: skip
        top = sustained(flat_out, members=2)
        flat_out["max_per_s"] = top
        out[1.0] = flat_out
        for fraction in fractions:
            # the round before may have left a backlog: let it drain first
            await fleet.wait_drained(workers, quiet_s=min(1.5, d))
            spec = Round(duration_s=d, rate=max(1.0, fraction * top), drain_s=drain)
            metrics = await measure_round(
                bench, fleet, target, workers, spec, what=f"latency {kind}: {fraction:.0%}"
            )
            metrics["max_per_s"] = top
            out[fraction] = metrics
        await fleet.stop_workers(workers)
    return out


async def run(bench: Bench) -> None:
    pairs = 10 if bench.quick else 50
    for _ in range(bench.repeats):
        for kind in TARGETS:
            for fraction, metrics in (await measure(bench, kind, pairs)).items():
                params: Params = {"fraction": fraction, "loadgen": bench.loadgen_for(kind)}
                point = bench.results.point("latency", kind, params)
                point.add(metrics)
