"""The JSON a run writes: points measured per scenario, target and parameters.

Every point keeps each repeat's metrics (``runs``) and their per-metric ``median``;
the report and the plots read only this file, so a report can be rendered again
from old results.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import msgspec

__all__ = ["Params", "Point", "Profile", "Results", "load_results", "median_of", "save_results"]

Params = dict[str, int | float | str]


class Point(msgspec.Struct, kw_only=True):
    """One measured configuration: ``target`` under ``scenario`` with ``params``."""

    scenario: str
    target: str
    params: Params = msgspec.field(default_factory=dict)
    runs: list[dict[str, float]] = msgspec.field(default_factory=list)
    median: dict[str, float] = msgspec.field(default_factory=dict)

    def add(self, metrics: dict[str, float]) -> None:
        """Add one repeat's metrics and recompute the medians."""
        self.runs.append(metrics)
        self.median = median_of(self.runs)


class Profile(msgspec.Struct, kw_only=True):
    """Where a target spent its CPU during one measurement (py-spy samples)."""

    scenario: str
    target: str
    samples: int
    self_top: list[tuple[str, float]]
    """Functions by share of samples spent in the function itself (percent)."""
    inclusive_top: list[tuple[str, float]]
    """Functions by share of samples with the function anywhere on the stack (percent)."""


class Results(msgspec.Struct, kw_only=True):
    """Everything one ``chatcore bench run`` measured."""

    started: str
    quick: bool
    repeats: int
    machine: dict[str, str]
    pinning: str
    points: list[Point] = msgspec.field(default_factory=list)
    profiles: list[Profile] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)

    def point(self, scenario: str, target: str, params: Params | None = None) -> Point:
        """The point for these keys, added if new."""
        params = params or {}
        for p in self.points:
            if (p.scenario, p.target, p.params) == (scenario, target, params):
                return p
        point = Point(scenario=scenario, target=target, params=params)
        self.points.append(point)
        return point

    def select(self, scenario: str, target: str | None = None) -> list[Point]:
        """The points of a scenario (and target), in the order they were measured."""
        return [
            p
            for p in self.points
            if p.scenario == scenario and (target is None or p.target == target)
        ]


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    """The median of each metric over the runs that have it."""
    keys = {k for run in runs for k in run}
    return {k: statistics.median(run[k] for run in runs if k in run) for k in sorted(keys)}


def save_results(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(results), indent=2))


def load_results(path: Path) -> Results:
    """Read a results file; raises msgspec.ValidationError for a malformed one."""
    return msgspec.json.decode(path.read_bytes(), type=Results)
