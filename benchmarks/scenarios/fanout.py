"""Group fanout: delivered messages per second by group size, chatcore against
Socket.IO rooms and Centrifugo channels.

About the same number of members connected at every size; one sender per group,
with enough sends in flight per sender that the server, not the window, limits.
chatcore's connections use the lean wire driver, as Socket.IO's and Centrifugo's use
a lean client: with the SDK, one load-generator core cannot read what the server
delivers. With ``bench.loadgen == "go"`` the Go load generator drives chatcore and
Centrifugo (Socket.IO keeps the Python one); each point records which one drove it.
Centrifugo (client-side subscribe and publish in a namespace, memory engine) is
measured when ``bench.centrifugo`` is set; it is built once into the cache.

After the flat-out round, a paced round on the same connections offers every server
the same load (5,000 deliveries per second) so their CPU per delivery compares at an
equal load, not only flat out (``paced_*`` metrics of the same point).
"""

from __future__ import annotations

from benchmarks.loadgen import Round
from benchmarks.results import Params
from benchmarks.scenarios._common import Bench, measure_round, start_wire

__all__ = ["run"]

TARGETS = (
    "chatcore-memory",
    "chatcore-memory-asgi",
    "chatcore-memory-granian",
    "socketio",
    "centrifugo",
)
_IN_FLIGHT = 32
PACED_DELIVERIES = 5000.0
"""Deliveries per second of the paced round that compares server CPU per delivery."""


def sizes(bench: Bench) -> list[int]:
    return [10, 50] if bench.quick else [10, 50, 256]


def _members(bench: Bench) -> int:
    return 60 if bench.quick else 520


def targets(bench: Bench) -> list[str]:
    """The servers this run measures."""
    return [kind for kind in TARGETS if kind != "centrifugo" or bench.centrifugo]


async def measure(
    bench: Bench, kind: str, size: int, members: int, *, paced_deliveries: float = 0.0
) -> dict[str, float]:
    """Groups of ``size`` with about ``members`` connected in all, one sender per group,
    driven by ``bench.loadgen_for(kind)``: a flat-out round's metrics.

    With ``paced_deliveries`` > 0, a paced round follows on the same connections at
    that many deliveries per second (``paced_deliveries / size`` messages per second);
    its metrics come back under ``paced_*`` keys."""
    groups = max(1, members // size)
    window = max(2, _IN_FLIGHT // groups)
    what = f"fanout {size}: {kind}"
    async with bench.fleet() as fleet:
        target, workers = await start_wire(bench, fleet, kind, [size] * groups, what=what)
        spec = Round(duration_s=bench.duration_s, window=window, drain_s=2.0)
        metrics = await measure_round(
            bench, fleet, target, workers, spec, what=what, profile_as=f"fanout-{size}"
        )
        if paced_deliveries > 0:
            await fleet.wait_drained(workers)
            paced = Round(duration_s=bench.duration_s, rate=paced_deliveries / size, drain_s=2.0)
            found = await measure_round(bench, fleet, target, workers, paced, what=f"{what} paced")
            metrics.update({f"paced_{key}": value for key, value in found.items()})
        await fleet.stop_workers(workers)
    metrics["groups"] = float(groups)
    metrics["window"] = float(window)
    return metrics


def paced_deliveries(bench: Bench) -> float:
    """Deliveries per second of the paced round: an equal load that every server
    measured here sustains (the issue's comparison with Centrifugo at 5 k/s)."""
    return 1000.0 if bench.quick else PACED_DELIVERIES


async def run(bench: Bench) -> None:
    for _ in range(bench.repeats):
        for size in sizes(bench):
            for kind in targets(bench):
                metrics = await measure(
                    bench, kind, size, _members(bench), paced_deliveries=paced_deliveries(bench)
                )
                params: Params = {"group_size": size, "loadgen": bench.loadgen_for(kind)}
                bench.results.point("fanout", kind, params).add(metrics)
