"""Running seeds: one, many, and the smallest failing workload of a seed."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import math
import statistics
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import anyio

from chatcore.sim._faults import Faults
from chatcore.sim._loop import SimLoop, VirtualClock, ordered_cancel_scopes, patched_wall_clock
from chatcore.sim._world import SimConfig, World

__all__ = ["SimResult", "latency_table", "run_seed", "run_seeds", "shortest_failure"]


@dataclass(frozen=True)
class SimResult:
    """What one seed did. ``violations`` is empty when every invariant held."""

    seed: int
    config: SimConfig
    violations: list[str]
    trace: list[str]
    trace_hash: str
    virtual_s: float
    latency: dict[tuple[str, str], list[float]] = dataclasses.field(default_factory=dict)
    """Virtual seconds by (what, where): see :attr:`chatcore.sim._world.World.latency`."""

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay_command(self) -> str:
        regions = ""
        if self.config.regions == 2:
            regions = f" --regions 2 --wan-rtt-ms {round(self.config.wan_rtt_s * 1000)}"
        faults = " --no-faults" if self.config.faults == Faults.none() else ""
        return (
            f"chatcore sim --seed {self.seed} --messages {self.config.messages}"
            f"{regions}{faults} --trace"
        )

    def report(self, *, tail: int | None = None) -> str:
        """The failure (or success) with the trace, the last ``tail`` lines of it if given."""
        lines = self.trace if tail is None else self.trace[max(0, len(self.trace) - tail) :]
        head = "ok" if self.ok else "FAILED: " + "; ".join(self.violations)
        return "\n".join(
            [
                f"seed {self.seed} (messages={self.config.messages}): {head}",
                f"replay: {self.replay_command()}",
                f"trace ({len(self.trace)} lines, sha256 {self.trace_hash[:16]}):",
                *lines,
            ]
        )


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection during a run.

    When the collector runs depends on every allocation since the process started, and
    collecting an abandoned async generator schedules its ``aclose()`` on the loop: a
    task that would come at a different point of each run. Without the collector such
    generators wait for the loop's shutdown; the garbage is collected after the run.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Stage restarts are logged with tracebacks; hundreds per run are expected here."""
    logger = logging.getLogger("chatcore")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_seed(seed: int, config: SimConfig | None = None) -> SimResult:
    """Run the simulation of ``seed``; the same seed and config give the same trace."""
    config = config or SimConfig()
    clock = VirtualClock()
    worlds: list[World] = []
    crash: BaseException | None = None

    async def main() -> None:
        world = World(seed, config, clock)
        worlds.append(world)
        await world.run()

    with patched_wall_clock(clock), ordered_cancel_scopes(), _quiet(), _no_cyclic_gc():
        try:
            anyio.run(
                main, backend="asyncio", backend_options={"loop_factory": lambda: SimLoop(clock)}
            )
        except Exception as exc:  # a bug of the system (or of the simulator) surfaced
            crash = exc
    world = worlds[0]
    if crash is not None:
        while isinstance(crash, BaseExceptionGroup) and len(crash.exceptions) == 1:
            crash = crash.exceptions[0]
        world.violate(f"the run raised {type(crash).__name__}: {crash}")
    return SimResult(
        seed, config, world.violations, world.trace, world.trace_hash, clock.now, world.latency
    )


def run_seeds(
    seeds: Iterable[int],
    config: SimConfig | None = None,
    *,
    on_result: Callable[[SimResult], None] | None = None,
    stop_at_first: bool = True,
) -> list[SimResult]:
    """Run each seed; the failures (only the first one with ``stop_at_first``)."""
    failures = []
    for seed in seeds:
        result = run_seed(seed, config)
        if on_result is not None:
            on_result(result)
        if not result.ok:
            failures.append(result)
            if stop_at_first:
                break
    return failures


def shortest_failure(failure: SimResult) -> SimResult:
    """The failing run of ``failure``'s seed with the fewest messages per client.

    Fewer messages is a different (shorter) execution of the same seed: it is returned
    only if it fails too, so its replay command reproduces a failure either way.
    """
    for messages in range(1, failure.config.messages):
        smaller = run_seed(failure.seed, dataclasses.replace(failure.config, messages=messages))
        if not smaller.ok:
            return smaller
    return failure


def latency_table(results: Iterable[SimResult]) -> str:
    """The virtual latencies of ``results`` pooled, as a Markdown table (ms)."""
    pooled: dict[tuple[str, str], list[float]] = {}
    for result in results:
        for key, values in result.latency.items():
            pooled.setdefault(key, []).extend(values)
    lines = ["| what | where | n | median ms | p99 ms | max ms |", "|---|---|---|---|---|---|"]
    for (what, where), values in sorted(pooled.items()):
        values = sorted(values)
        p99 = values[max(0, math.ceil(len(values) * 0.99) - 1)]
        median = statistics.median(values)
        lines.append(
            f"| {what} | {where} | {len(values)} | {median * 1000:.0f} | {p99 * 1000:.0f} "
            f"| {values[-1] * 1000:.0f} |"
        )
    return "\n".join(lines)
