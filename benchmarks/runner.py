"""``chatcore bench``'s work: run scenarios, write results.json, render the report.

A run writes to ``benchmarks/results/<UTC time>/``: ``results.json``, ``report.md``
with its PNG plots, ``logs/`` (every process's stderr) and, with profiling,
``profiles/``. ``publish`` copies a report and its plots into ``docs/``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import anyio
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from benchmarks.report import render_report
from benchmarks.results import Results, load_results, save_results
from benchmarks.scenarios import direct, fanout, idle, ids, latency, production
from benchmarks.scenarios._common import Bench
from benchmarks.system import CpuPlan, machine_info, raise_fd_limit

__all__ = ["SCENARIOS", "publish", "rerender", "run_benchmarks"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

SCENARIOS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "ids": ids.run,
    "idle": idle.run,
    "direct": direct.run,
    "fanout": fanout.run,
    "latency": latency.run,
    "production": production.run,
}
"""Every scenario by name, in the order a full run takes them."""


def _progress(console: Console | None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )


def run_benchmarks(
    scenarios: Sequence[str],
    *,
    quick: bool = False,
    repeats: int = 3,
    duration_s: float | None = None,
    profile: bool = False,
    pin: bool = True,
    nice: int = 0,
    out: Path | None = None,
    console: Console | None = None,
) -> Path:
    """Run ``scenarios`` (names of :data:`SCENARIOS`); the folder holding the results.

    Raises ValueError for an unknown scenario and BenchmarkFailed when a process
    under test fails (its log is named).
    """
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    raise_fd_limit(200_000)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = out or RESULTS / stamp
    folder.mkdir(parents=True, exist_ok=True)
    plan = CpuPlan.detect(pin=pin, nice=nice)
    results = Results(
        started=stamp,
        quick=quick,
        repeats=repeats,
        machine=machine_info(),
        pinning=plan.describe(),
    )
    started = time.monotonic()

    async def go() -> None:
        with _progress(console) as progress:
            bench = Bench(
                results=results,
                plan=plan,
                out=folder,
                progress=progress,
                quick=quick,
                repeats=repeats,
                profile=profile,
                duration_s=duration_s or (2.0 if quick else 5.0),
            )
            for name in SCENARIOS:
                if name in scenarios:
                    await SCENARIOS[name](bench)
                    save_results(results, folder / "results.json")

    try:
        anyio.run(go)
    finally:
        results.notes.append(f"wall time of the run: {time.monotonic() - started:.0f} s")
        save_results(results, folder / "results.json")
        shutil.rmtree(folder / "data", ignore_errors=True)
    render_report(results, folder)
    return folder


def rerender(results_file: Path) -> Path:
    """Render the report of an existing results.json again; the report's path."""
    return render_report(load_results(results_file), results_file.parent)


def publish(folder: Path, *, docs: Path = REPO / "docs") -> Path:
    """Copy a run's report to docs/benchmarks/report.md and its plots to docs/img/."""
    target = docs / "benchmarks"
    target.mkdir(parents=True, exist_ok=True)
    (docs / "img").mkdir(exist_ok=True)
    for png in folder.glob("bench-*.png"):
        shutil.copy2(png, docs / "img" / png.name)
    shutil.copy2(folder / "results.json", target / "results.json")
    text = (folder / "report.md").read_text().replace("](bench-", "](../img/bench-")
    (target / "report.md").write_text(text)
    return target / "report.md"
