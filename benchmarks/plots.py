"""The report's PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter, ScalarFormatter

from benchmarks.results import Point, Results

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PLOTS", "draw_plots"]

PLOTS = {
    "latency": "bench-latency.png",
    "fanout": "bench-fanout.png",
    "idle": "bench-idle.png",
    "storm": "bench-storm.png",
    "production": "bench-production.png",
    "production-workers": "bench-production-workers.png",
    "overload": "bench-overload.png",
}
"""File name of each plot: a scenario's, or another of it (``<scenario>-<what>``)."""


def _latency(results: Results, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for target in sorted({p.target for p in results.select("latency")}):
        points = [p for p in results.select("latency", target) if float(p.params["fraction"]) < 1]
        points.sort(key=lambda p: p.median.get("offered_per_s", 0.0))
        if not points:
            continue
        x = [p.median["offered_per_s"] for p in points]
        ax.plot(x, [p.median["p99_ms"] for p in points], marker="o", label=f"{target} p99")
        ax.plot(x, [p.median["p50_ms"] for p in points], ls="--", marker=".", label=f"{target} p50")
        drawn = True
    ax.set_xlabel("offered load (messages/s)")
    ax.set_ylabel("send → receive latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Latency vs offered load (direct chats)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, drawn)


def _series(p: Point) -> str:
    """A fanout point's label: its target, and the load generator when it was not Python."""
    loadgen = p.params.get("loadgen", "python")
    return p.target if loadgen == "python" else f"{p.target} ({loadgen} load gen)"


def _fanout(results: Results, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    points = results.select("fanout")
    series = sorted({_series(p) for p in points})
    sizes = sorted({int(p.params["group_size"]) for p in points})
    width = 0.8 / max(1, len(series))
    for i, label in enumerate(series):
        values = []
        for size in sizes:
            found = [p for p in points if _series(p) == label and p.params["group_size"] == size]
            values.append(found[0].median.get("delivered_per_s", 0.0) if found else 0.0)
        xs = [j + i * width for j in range(len(sizes))]
        ax.bar(xs, values, width=width, label=label)
    ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(sizes))])
    ax.set_xticklabels([str(s) for s in sizes])
    ax.set_xlabel("group size (members)")
    ax.set_ylabel("delivered messages/s")
    ax.set_yscale("log")
    ax.set_title("Group fanout throughput")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, bool(sizes))


def _idle(results: Results, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for target in sorted({p.target for p in results.select("idle")}):
        points = sorted(results.select("idle", target), key=lambda p: int(p.params["connections"]))
        x = [p.median["connected"] for p in points]
        ax.plot(x, [p.median["rss_mib"] for p in points], marker="o", label=target)
        drawn = drawn or bool(points)
    ax.set_xlabel("idle connections")
    ax.set_ylabel("server RSS (MiB)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title("Server memory vs idle connections")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, drawn)


def _storm(results: Results, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for target in sorted({p.target for p in results.select("storm")}):
        points = sorted(results.select("storm", target), key=lambda p: int(p.params["connections"]))
        x = [int(p.params["connections"]) for p in points]
        ax.plot(x, [p.median["reconnects_per_s"] for p in points], marker="o", label=target)
        drawn = drawn or bool(points)
    ax.set_xlabel("clients reconnecting at once")
    ax.set_ylabel("reconnections/s (hello + sync)")
    ax.set_xscale("log")
    ax.set_title("Reconnect storm after a restart")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, drawn)


def _production(results: Results, path: Path) -> bool:
    points = sorted(
        results.select("production", "chatcore-production"),
        key=lambda p: p.median.get("sent_per_s", 0.0),
    )
    if not points:
        plt.close("all")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = [p.median["sent_per_s"] for p in points]
    ax.plot(x, [p.median["accepted_per_s"] for p in points], marker="o", label="accepted/s")
    delivered = [p.median["delivered_per_s"] / 2 for p in points]  # direct chats: 2 members
    ax.plot(x, delivered, marker="^", label="delivered/s ÷ 2 members")
    ax.set_xlabel("sent (messages/s; the last point is flat out)")
    ax.set_ylabel("messages/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    right = ax.twinx()
    right.plot(x, [p.median["p99_ms"] for p in points], color="C3", marker="s", label="p99 ms")
    right.set_ylabel("delivery p99 (ms)")
    right.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis, right.yaxis):
        axis.set_major_formatter(ScalarFormatter())
        axis.set_minor_formatter(NullFormatter())
    ax.set_title("Kafka + Cassandra + Redis")
    ax.grid(True, alpha=0.3)
    fig.legend(fontsize=8, loc="upper left")
    return _save(fig, path, True)


def _production_workers(results: Results, path: Path) -> bool:
    points = sorted(
        results.select("production", "chatcore-workers"), key=lambda p: float(p.params["workers"])
    )
    if not points:
        plt.close("all")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2))
    x = [float(p.params["workers"]) for p in points]
    ax.plot(x, [p.median["accepted_per_s"] for p in points], marker="o", label="accepted/s")
    delivered = [p.median["delivered_per_s"] / 2 for p in points]
    ax.plot(x, delivered, marker="^", label="delivered/s ÷ 2 members")
    ax.set_xlabel("chatcore worker processes (one gateway)")
    ax.set_xticks(x)
    ax.set_ylabel("messages/s, flat out")
    ax.set_ylim(bottom=0)
    right = ax.twinx()
    right.plot(x, [p.median["p99_ms"] for p in points], color="C3", marker="s", label="p99 ms")
    right.set_ylabel("delivery p99 (ms)")
    right.set_ylim(bottom=0)
    ax.set_title("Kafka + Cassandra + Redis: gateway and workers")
    ax.grid(True, alpha=0.3)
    ax.legend(handles=[*ax.get_lines(), *right.get_lines()], fontsize=8, loc="best")
    return _save(fig, path, True)


def _overload(results: Results, path: Path) -> bool:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    drawn = False
    for target in sorted({p.target for p in results.select("overload")}):
        points = [p for p in results.select("overload", target) if float(p.params["multiple"]) > 0]
        points.sort(key=lambda p: float(p.params["multiple"]))
        if not points:
            continue
        x = [float(p.params["multiple"]) for p in points]
        ax.plot(x, [p.median["p99_ms"] for p in points], marker="o", label=f"{target} p99")
        ax.plot(x, [p.median["p50_ms"] for p in points], ls="--", marker=".", label=f"{target} p50")
        drawn = True
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("offered load (multiple of the maximum sustained rate)")
    ax.set_ylabel("accepted send → receive latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Latency past saturation (group fanout)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, drawn)


def _save(fig: Figure, path: Path, drawn: bool) -> bool:
    if drawn:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def draw_plots(results: Results, folder: Path) -> dict[str, str]:
    """Draw every plot the results have data for; file name by plot (:data:`PLOTS`)."""
    drawers = {
        "latency": _latency,
        "fanout": _fanout,
        "idle": _idle,
        "storm": _storm,
        "production": _production,
        "production-workers": _production_workers,
        "overload": _overload,
    }
    drawn = {}
    for name, draw in drawers.items():
        scenario = name.partition("-")[0]
        if results.select(scenario) and draw(results, folder / PLOTS[name]):
            drawn[name] = PLOTS[name]
    return drawn
