"""Past saturation: p99 against offered load, with chatcore's admission bounds and without.

Groups of 256 (``--quick``: 100; the fanout, not one sender's requests, must be what
saturates the server), :data:`SENDERS` senders per group (so that no sender's own
requests, handled in order on its connection, are what limits), on the fast path. First a
flat-out round finds the maximum sustained rate (messages per second accepted *and*
delivered to every member); then one open-loop paced round per multiple of it
(:data:`MULTIPLES`: 0.5, 1, 1.5, 2, 3 times). Each round reports accepted/s, refused/s (sends
the server answered ``overloaded``), delivered/s and the latency of the delivered
messages. A refused send is dropped, not sent again, so the offered load stays what
it is; latency is counted from the send of each *accepted* message (its scheduled
send time, which is when it was sent) to its arrival, so refused sends add nothing
to it.

The same rounds run twice: on ``chatcore-memory`` with its default bounds
(``max_delivery_lag_s`` 250 ms, ``max_delivery_backlog`` 5 000), and on
``chatcore-memory-unbounded``, the same server with both turned off
(``CHATCORE_BENCH_UNBOUNDED=1``): bounded, p99 should stay flat past the maximum;
unbounded, it climbs with the backlog.
"""

from __future__ import annotations

from benchmarks.loadgen import Round
from benchmarks.results import Params
from benchmarks.scenarios._common import Bench, measure_round, start_wire, sustained

__all__ = ["MULTIPLES", "TARGETS", "run"]

MULTIPLES = (0.5, 1.0, 1.5, 2.0, 3.0)
"""Offered load of the paced rounds, as multiples of the flat-out maximum."""
TARGETS = {"chatcore-memory": {}, "chatcore-memory-unbounded": {"CHATCORE_BENCH_UNBOUNDED": "1"}}
"""Each measured series: the target it runs and the environment it runs with."""
_IN_FLIGHT = 32
SENDERS = 16
"""Members of each group that send (the offered load is spread over them)."""


def size(bench: Bench) -> int:
    return 100 if bench.quick else 256


def _groups(bench: Bench) -> int:
    return 2


async def measure(
    bench: Bench,
    series: str,
    group_size: int,
    groups: int,
    multiples: tuple[float, ...] = MULTIPLES,
) -> dict[float, dict[str, float]]:
    """Metrics per multiple of the maximum (0.0: the flat-out round itself)."""
    env = TARGETS[series]
    kind = "chatcore-memory"
    out: dict[float, dict[str, float]] = {}
    what = f"overload {group_size}: {series}"
    async with bench.fleet(env) as fleet:
        target, workers = await start_wire(
            bench, fleet, kind, [group_size] * groups, what=what,
            senders_per_group=min(SENDERS, group_size),
        )  # fmt: skip
        d = bench.duration_s
        window = max(1, _IN_FLIGHT // (groups * min(SENDERS, group_size)))
        flat = await measure_round(
            bench, fleet, target, workers, Round(duration_s=d, window=window, drain_s=2.0),
            what=f"{what}: maximum",
        )  # fmt: skip
        top = max(1.0, sustained(flat, members=group_size))
        flat["max_per_s"] = top
        out[0.0] = flat
        for multiple in multiples:
            await fleet.wait_drained(workers, quiet_s=min(1.5, d))  # the round before's backlog
            spec = Round(duration_s=d, rate=multiple * top, drain_s=2.0)
            metrics = await measure_round(
                bench, fleet, target, workers, spec, what=f"{what}: {multiple:g}x"
            )
            metrics["max_per_s"] = top
            metrics["multiple"] = multiple
            out[multiple] = metrics
        await fleet.stop_workers(workers)
    return out


async def run(bench: Bench) -> None:
    group_size = size(bench)
    for _ in range(bench.repeats):
        for series in TARGETS:
            found = await measure(bench, series, group_size, _groups(bench))
            for multiple, metrics in found.items():
                params: Params = {
                    "group_size": group_size,
                    "multiple": multiple,
                    "loadgen": bench.loadgen_for("chatcore-memory"),
                }
                bench.results.point("overload", series, params).add(metrics)
