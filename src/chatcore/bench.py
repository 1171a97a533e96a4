"""``chatcore bench``: the load generator and peer comparisons of ``benchmarks/``.

The benchmarks live in the repository (``benchmarks/``), not in the installed
package: run these commands from a checkout (or any folder below one), with the
``bench`` extra installed. See docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(
    name="bench",
    help="Benchmarks: chatcore and its peers under load; JSON results, a Markdown report.",
    no_args_is_help=True,
    add_completion=False,
)

SCENARIO_NAMES = ("ids", "idle", "storm", "direct", "fanout", "latency", "production", "overload")
LOADGENS = ("python", "go")


def _runner() -> ModuleType:
    """benchmarks.runner, found in the checkout around the working directory."""
    try:
        return importlib.import_module("benchmarks.runner")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.runner"):
            typer.echo(f"error: {exc}; install the extra: pip install 'chatcore[bench]'", err=True)
            raise typer.Exit(2) from exc
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "benchmarks" / "runner.py").is_file():
            sys.path.insert(0, str(folder))
            return importlib.import_module("benchmarks.runner")
    typer.echo("error: no benchmarks/ folder here: run from a chatcore checkout", err=True)
    raise typer.Exit(2)


@app.command()
def run(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help=f"Scenarios to run (default: all): {', '.join(SCENARIO_NAMES)}."),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Scenario to leave out (repeat).")
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Small sizes and 2 s rounds (about 7 minutes; 3 with --repeats 1)."
        ),
    ] = False,
    repeats: Annotated[int, typer.Option(help="Runs per point; the report gives medians.")] = 3,
    duration: Annotated[
        float | None, typer.Option(help="Seconds per measured round (default 5, quick 2).")
    ] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Sample the server with py-spy in flat-out rounds.")
    ] = False,
    pin: Annotated[
        bool, typer.Option(help="Pin the server and the load generators with taskset.")
    ] = True,
    nice: Annotated[
        int,
        typer.Option(help="Run the measured processes under `nice -n N` (below 0: root)."),
    ] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Results folder (default benchmarks/results/<time>).")
    ] = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Copy the report and plots into docs/.")
    ] = False,
    loadgen: Annotated[
        str,
        typer.Option(
            help="Load generator of the fanout and overload scenarios: python, or go "
            "(chatcore and Centrifugo; built once into ~/.cache/chatcore-bench)."
        ),
    ] = "python",
    centrifugo: Annotated[
        bool,
        typer.Option(help="Measure Centrifugo v6 in the fanout scenario (built once; needs Go)."),
    ] = True,
) -> None:
    """Run benchmarks; write results.json, report.md and PNG plots."""
    from rich.console import Console

    runner = _runner()
    chosen = [s for s in (scenarios or SCENARIO_NAMES) if s not in (skip or [])]
    unknown = set(chosen) - set(SCENARIO_NAMES)
    if unknown:
        raise typer.BadParameter(f"unknown scenarios {sorted(unknown)}", param_hint="SCENARIOS")
    if repeats < 1:
        raise typer.BadParameter("at least 1", param_hint="--repeats")
    if loadgen not in LOADGENS:
        raise typer.BadParameter(f"one of {', '.join(LOADGENS)}", param_hint="--loadgen")
    console = Console(stderr=True)
    try:
        folder = runner.run_benchmarks(
            chosen,
            quick=quick,
            repeats=repeats,
            duration_s=duration,
            profile=profile,
            pin=pin,
            nice=nice,
            out=out,
            console=console,
            loadgen=loadgen,
            centrifugo=centrifugo,
        )
    except Exception as exc:
        if type(exc).__name__ != "BenchmarkFailed":
            raise
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"results: {folder / 'results.json'}")
    typer.echo(f"report:  {folder / 'report.md'}")
    if publish:
        typer.echo(f"published: {runner.publish(folder)}")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results.json written by `bench run`.")],
    publish: Annotated[
        bool, typer.Option("--publish", help="Copy the report and plots into docs/.")
    ] = False,
) -> None:
    """Render the report of a results.json again (after changing the report code)."""
    runner = _runner()
    if not results.is_file():
        raise typer.BadParameter(f"no such file: {results}", param_hint="RESULTS")
    typer.echo(f"report: {runner.rerender(results)}")
    if publish:
        typer.echo(f"published: {runner.publish(results.parent)}")
