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

from benchmarks.builds import (
    CENTRIFUGO_VERSION,
    BuildFailed,
    cache_dir,
    centrifugo_binary,
    go_loadgen_binary,
)
from benchmarks.fleet import BenchmarkFailed
from benchmarks.report import render_report
from benchmarks.results import Results, load_results, save_results
from benchmarks.scenarios import (
    direct,
    fanout,
    idle,
    ids,
    latency,
    overload,
    production,
    storm,
)
from benchmarks.scenarios._common import Bench
from benchmarks.system import CpuPlan, machine_info, raise_fd_limit
from benchmarks.targets import uvloop_targets

__all__ = ["LOADGENS", "SCENARIOS", "prerequisites", "publish", "rerender", "run_benchmarks"]

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"

SCENARIOS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "ids": ids.run,
    "idle": idle.run,
    "storm": storm.run,
    "direct": direct.run,
    "fanout": fanout.run,
    "latency": latency.run,
    "production": production.run,
    "overload": overload.run,
}
"""Every scenario by name, in the order a full run takes them."""
LOADGENS = ("python", "go")
"""The load generators a run can use (``go``: ``benchmarks/loadgen-go``)."""


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
    loadgen: str = "python",
    centrifugo: bool = True,
) -> Path:
    """Run ``scenarios`` (names of :data:`SCENARIOS`); the folder holding the results.

    ``loadgen``: ``python`` or ``go`` (the Go generator drives the fanout scenario's
    chatcore and Centrifugo targets). ``centrifugo``: measure Centrifugo in the fanout
    scenario. Native programs are built first, once, into the cache
    (:mod:`benchmarks.builds`). Raises ValueError for an unknown scenario or load
    generator and BenchmarkFailed when a build or a process under test fails (its log
    is named).
    """
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {', '.join(SCENARIOS)}")
    if loadgen not in LOADGENS:
        raise ValueError(f"unknown load generator {loadgen!r}; known: {', '.join(LOADGENS)}")
    prerequisites(scenarios, loadgen=loadgen, centrifugo=centrifugo, console=console)
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
    results.machine["load generator"] = loadgen
    results.machine["event loop (uvicorn targets)"] = "uvloop" if uvloop_targets() else "asyncio"
    if centrifugo and "fanout" in scenarios:
        results.machine["pkg:centrifugo"] = CENTRIFUGO_VERSION
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
                loadgen=loadgen,
                centrifugo=centrifugo,
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


def prerequisites(
    scenarios: Sequence[str],
    *,
    loadgen: str = "python",
    centrifugo: bool = True,
    console: Console | None = None,
) -> None:
    """Build the native programs the run needs (once; later runs find them in the
    cache); raises BenchmarkFailed when one cannot be built."""
    needed = []
    if "fanout" in scenarios and centrifugo:
        needed.append(("Centrifugo", centrifugo_binary))
    if loadgen == "go" or "storm" in scenarios:  # the storm always uses the Go one
        needed.append(("the Go load generator", go_loadgen_binary))
    for what, build in needed:
        if console is not None:
            console.print(f"{what}: building it once into {cache_dir()} if it is not there")
        try:
            path = build()
        except BuildFailed as exc:
            raise BenchmarkFailed(f"{exc}\n(leave Centrifugo out with --no-centrifugo)") from exc
        if console is not None:
            console.print(f"{what}: {path}")


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
