"""Snowflake ids per second on one thread: chatcore's generator against ``snowflake-id``.

Each repeat runs in a fresh process pinned to one core (``python -m
benchmarks.scenarios.ids COUNT`` prints the rates as JSON). Both generators make
the same 64-bit layout (41 bits of ms, 10 of node, 12 of sequence); where
``snowflake-id`` runs out of a millisecond's 4096 ids it returns None instead of
waiting: those calls are counted apart and not as ids. The ceiling of the layout is
4096 ids per millisecond (4.1 M/s) per node id.
"""

from __future__ import annotations

import json
import sys
import time

import anyio

from benchmarks.scenarios._common import Bench

__all__ = ["measure", "run"]


def measure(count: int) -> dict[str, float]:
    """Ids per second of each generator over ``count`` ids (this process, this thread)."""
    import snowflake  # type: ignore[import-untyped]

    from chatcore.ids import SnowflakeGenerator

    ours = SnowflakeGenerator(1).next_id
    started = time.perf_counter()
    last = 0
    for _ in range(count):
        last = ours()
    chatcore_rate = count / (time.perf_counter() - started)
    assert last > 0
    theirs = snowflake.SnowflakeGenerator(1).__next__
    exhausted = 0
    started = time.perf_counter()
    for _ in range(count):
        if theirs() is None:
            exhausted += 1
    peer_rate = (count - exhausted) / (time.perf_counter() - started)
    return {"chatcore": chatcore_rate, "snowflake-id": peer_rate, "peer_exhausted": exhausted}


async def run(bench: Bench) -> None:
    """Measure both generators ``bench.repeats`` times, each in a fresh pinned process."""
    count = 200_000 if bench.quick else 3_000_000
    core = bench.plan.load_prefix(0)
    task = bench.progress.add_task("ids: Snowflake ids/s", total=bench.repeats)
    for _ in range(bench.repeats):
        done = await anyio.run_process(
            [*core, sys.executable, "-m", "benchmarks.scenarios.ids", str(count)],
            env=bench.fleet().env,
        )
        rates = json.loads(done.stdout)
        for name in ("chatcore", "snowflake-id"):
            metrics = {"ids_per_s": rates[name]}
            if name == "snowflake-id":
                metrics["exhausted"] = rates["peer_exhausted"]
            bench.results.point("ids", name, {"count": count}).add(metrics)
        bench.progress.advance(task)
    bench.progress.remove_task(task)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
