"""Per-process figures read from a ``chatcore bench`` results file.

The bench measures one process on one core; these turn its medians into the
:class:`~chatcore.plan.model.Measured` fields the model needs. Only what a run
measured is returned: the rest keeps its default or its flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["from_bench"]

KIB = 1024


def from_bench(results: Mapping[str, Any], *, gateway_memory_gib: float = 8.0) -> dict[str, float]:
    """Measured-field values derived from a bench results document.

    - ``connections_per_gateway``: ``gateway_memory_gib`` over the memory per idle
      connection at the largest idle point of chatcore;
    - ``deliveries_per_gateway_s``: the best fanout delivered/s per server CPU-second;
    - ``msgs_per_worker_s``: the production scenario's sustained maximum.
    """
    points = list(_points(results))
    derived: dict[str, float] = {}
    idle = [p for p in points if p["scenario"] == "idle" and p["target"].startswith("chatcore")]
    if idle:
        largest = max(idle, key=lambda p: p["params"].get("connections", 0))
        kib = float(largest["median"]["kib_per_conn"])
        if kib > 0:
            derived["connections_per_gateway"] = gateway_memory_gib * KIB * KIB / kib
    fanout = [
        float(p["median"]["delivered_per_s"]) / float(p["median"]["server_cpu"])
        for p in points
        if p["scenario"] == "fanout"
        and p["target"].startswith("chatcore")
        and float(p["median"].get("server_cpu", 0)) > 0
    ]
    if fanout:
        derived["deliveries_per_gateway_s"] = max(fanout)
    production = [
        float(p["median"]["max_per_s"])
        for p in points
        if p["scenario"] == "production" and "max_per_s" in p["median"]
    ]
    if production:
        derived["msgs_per_worker_s"] = max(production)
    return derived


def _points(results: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    points = results.get("points")
    if not isinstance(points, list):
        raise ValueError("not a chatcore bench results file: no 'points' list")
    for point in points:
        if isinstance(point, dict) and isinstance(point.get("median"), dict):
            yield point
