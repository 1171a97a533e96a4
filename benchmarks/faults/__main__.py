"""``python -m benchmarks.faults``: run the fault scenarios, write their figures.

::

    python -m benchmarks.faults                        # every scenario -> docs/reliability.md
    python -m benchmarks.faults kafka_kill redis_loss  # some of them
    python -m benchmarks.faults --smoke --no-write   # small sizes (what tests/faults runs)
    python -m benchmarks.faults soak --soak-s 3600   # a longer soak

Starts its own Redis and Kafka with ``scripts/services`` (ports 16379 and 19092 unless
``--redis-port``/``--kafka-port``; data under the work folder) and stops them at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from benchmarks.faults.report import render, splice
from benchmarks.faults.scenarios import Context, Outcome, Sizes
from benchmarks.faults.stack import REPO, FaultFailed, Services
from benchmarks.faults.suite import BOUNDS_S, SCENARIOS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.faults", description=__doc__.split("\n")[0]
    )
    p.add_argument("scenarios", nargs="*", help=f"default: all of {', '.join(SCENARIOS)}")
    p.add_argument("--smoke", action="store_true", help="small sizes, for CI")
    p.add_argument(
        "--soak-s", type=float, default=None, help="soak length in seconds (default 300)"
    )
    p.add_argument("--redis-port", type=int, default=16379)
    p.add_argument("--kafka-port", type=int, default=19092)
    p.add_argument(
        "--workdir", type=Path, default=None, help="logs and data (default: a temp folder)"
    )
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "reliability.md")
    p.add_argument("--no-write", action="store_true", help="do not touch --doc")
    p.add_argument("--json", type=Path, default=None, help="also write the outcomes as JSON")
    p.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="a --json file of an earlier run: its outcomes stay in the table, "
        "except the scenarios run now, which replace theirs (and are named in the header)",
    )
    p.add_argument("--keep-services", action="store_true", help="leave Redis and Kafka running")
    return p


async def run_all(
    names: list[str], ctx: Context, *, keep_services: bool = False, echo: bool = True
) -> list[Outcome]:
    """Run ``names`` one after another, each under its bound; the outcomes."""
    outcomes: list[Outcome] = []
    try:
        await ctx.services.start("redis", "kafka")
        for name in names:
            bound = BOUNDS_S[name] + (ctx.sizes.soak_s if name == "soak" else 0)
            if echo:
                print(f"[faults] {name} (at most {bound:g} s) ...", flush=True)
            started = time.monotonic()
            try:
                await ctx.services.start("redis", "kafka")
                with anyio.fail_after(bound):
                    outcome = await SCENARIOS[name](ctx)
            except TimeoutError:
                outcome = Outcome(
                    name, "", "", notes=[f"did not finish within its bound of {bound:g} s"]
                )
            except FaultFailed as exc:
                outcome = Outcome(name, "", "", notes=[f"could not run: {str(exc)[-1500:]}"])
            except Exception as exc:  # a crash of one scenario must not lose the others
                what = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, BaseExceptionGroup):
                    what += f" (first: {exc.exceptions[0]!r})"
                outcome = Outcome(name, "", "", notes=[f"crashed: {what[-1500:]}"])
            outcome.seconds = time.monotonic() - started
            outcomes.append(outcome)
            if echo:
                verdict = "pass" if outcome.passed else "FAIL"
                print(
                    f"[faults] {name}: {verdict} in {outcome.seconds:.0f} s",
                    json.dumps(outcome.figures),
                    flush=True,
                )
                for note in outcome.notes:
                    print(f"[faults]   {note}", flush=True)
    finally:
        if not keep_services:
            with anyio.CancelScope(shield=True):
                await ctx.services.stop("redis", "kafka")
    return outcomes


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"error: unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})", file=sys.stderr
        )
        return 2
    sizes = Sizes.smoke() if args.smoke else Sizes()
    if args.soak_s is not None:
        if args.soak_s <= 0:
            print("error: --soak-s must be positive", file=sys.stderr)
            return 2
        sizes = replace(sizes, soak_s=args.soak_s)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chatcore-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    services = Services(workdir / "services", args.redis_port, args.kafka_port)
    ctx = Context(services, workdir, sizes)
    print(f"[faults] work folder {workdir}", flush=True)
    outcomes = anyio.run(lambda: run_all(names, ctx, keep_services=args.keep_services))
    data = [o.to_dict() for o in outcomes]
    rerun = ""
    if args.merge is not None:
        earlier = json.loads(args.merge.read_text())
        fresh = {o["name"]: o for o in data}
        data = [fresh.pop(o["name"], o) for o in earlier] + list(fresh.values())
        rerun = f"; run again on their own afterwards: {', '.join(f'`{n}`' for n in names)}"
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    if not args.no_write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        mode = "smoke sizes" if args.smoke else "full sizes"
        header = (
            f"Written by `python -m benchmarks.faults` on {when} ({mode}, "
            f"soak {sizes.soak_s:g} s{rerun}); logs were in a temporary folder."
        )
        doc = args.doc.read_text() if args.doc.exists() else ""
        args.doc.write_text(splice(doc, render(data, header=header)))
        print(f"[faults] figures written to {args.doc}", flush=True)
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
