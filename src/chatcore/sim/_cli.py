"""What ``chatcore sim`` does (the command's options are in chatcore.cli)."""

from __future__ import annotations

import time
from collections.abc import Callable

from chatcore.sim._faults import Faults
from chatcore.sim._run import SimResult, latency_table, run_seed, shortest_failure
from chatcore.sim._world import SimConfig

__all__ = ["run_cli"]


def run_cli(
    *,
    seeds: int,
    first: int,
    seed: int | None,
    messages: int,
    trace: bool,
    echo: Callable[[str], None],
    regions: int = 1,
    wan_rtt_ms: float = 100.0,
    faults: bool = True,
) -> int:
    """Run the seeds; print progress, and for a failure its shortest trace; with two
    regions, the latency table at the end. The exit code."""
    config = SimConfig(
        messages=messages,
        regions=regions,
        wan_rtt_s=wan_rtt_ms / 1000,
        faults=Faults() if faults else Faults.none(),
    )
    chosen = [seed] if seed is not None else list(range(first, first + seeds))
    started = time.perf_counter()
    results: list[SimResult] = []
    for n, s in enumerate(chosen, 1):
        result = run_seed(s, config)
        results.append(result)
        if seed is not None and not trace:
            echo(result.report(tail=0 if result.ok else 40))
        elif trace or not result.ok:
            if not result.ok and seed is None:
                echo(f"seed {s} FAILED: {'; '.join(result.violations)}")
                echo("looking for the shortest failing run of this seed ...")
                result = shortest_failure(result)
            echo(result.report())
        if not result.ok:
            return 1
        if seed is None and (n % 100 == 0 or n == len(chosen)):
            echo(_progress(n, result, time.perf_counter() - started))
    if regions == 2:
        echo(f"virtual latency, WAN round trip {wan_rtt_ms:g} ms:")
        echo(latency_table(results))
    return 0


def _progress(n: int, last: SimResult, elapsed: float) -> str:
    return f"{n} seeds ok (last: seed {last.seed}, trace {last.trace_hash[:16]}) in {elapsed:.1f} s"
