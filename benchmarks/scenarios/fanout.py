"""Group fanout: delivered messages per second by group size, chatcore against Socket.IO rooms.

About the same number of members connected at every size; one sender per group,
with enough sends in flight per sender that the server, not the window, limits.
chatcore's connections use the lean wire driver, as Socket.IO's use a lean client:
with the SDK, one load-generator core cannot read what the server delivers.
"""

from __future__ import annotations

from benchmarks.loadgen import Round
from benchmarks.scenarios._common import Bench, measure_round

__all__ = ["run"]

TARGETS = ("chatcore-memory", "chatcore-memory-asgi", "chatcore-memory-granian", "socketio")
_IN_FLIGHT = 32


def sizes(bench: Bench) -> list[int]:
    return [10, 50] if bench.quick else [10, 50, 256]


def _members(bench: Bench) -> int:
    return 60 if bench.quick else 520


async def measure(bench: Bench, kind: str, size: int, members: int) -> dict[str, float]:
    """Groups of ``size`` with about ``members`` connected in all, one sender per group."""
    groups = max(1, members // size)
    window = max(2, _IN_FLIGHT // groups)
    async with bench.fleet() as fleet:
        target = await fleet.start_target(kind)
        workers = await fleet.start_groups(
            target,
            [size] * groups,
            run_id=bench.run_id(),
            what=f"fanout {size}: {kind}",
            client="wire",
        )
        spec = Round(duration_s=bench.duration_s, window=window, drain_s=2.0)
        metrics = await measure_round(
            bench, fleet, target, workers, spec, what=f"fanout {size}: {kind}",
            profile_as=f"fanout-{size}",
        )  # fmt: skip
        await fleet.stop_workers(workers)
    metrics["groups"] = float(groups)
    metrics["window"] = float(window)
    return metrics


async def run(bench: Bench) -> None:
    for _ in range(bench.repeats):
        for size in sizes(bench):
            for kind in TARGETS:
                metrics = await measure(bench, kind, size, _members(bench))
                bench.results.point("fanout", kind, {"group_size": size}).add(metrics)
