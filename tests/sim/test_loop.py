"""The simulation's event loop: virtual time, and a clear error when nothing can move."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import pytest

from chatcore.sim import SimDeadlock
from chatcore.sim._loop import EPOCH_NS, SimLoop, VirtualClock, patched_wall_clock


def run(clock: VirtualClock, fn: Callable[[], Awaitable[None]]) -> None:
    anyio.run(fn, backend="asyncio", backend_options={"loop_factory": lambda: SimLoop(clock)})


def test_an_hour_of_sleep_takes_no_real_time_and_moves_the_clock_exactly() -> None:
    clock = VirtualClock()
    woke: list[float] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for delay in (3600.0, 1.5, 60.0):
                tg.start_soon(sleeper, delay)

    async def sleeper(delay: float) -> None:
        await anyio.sleep(delay)
        woke.append(anyio.current_time())

    started = time.perf_counter()
    run(clock, main)
    assert time.perf_counter() - started < 5
    assert woke == [1.5, 60.0, 3600.0]
    assert clock.now == 3600.0


def test_every_task_waiting_with_no_timer_is_a_deadlock() -> None:
    async def main() -> None:
        await anyio.Event().wait()

    with pytest.raises(SimDeadlock):
        run(VirtualClock(), main)


def test_the_wall_clock_follows_the_virtual_clock_and_its_jumps() -> None:
    clock = VirtualClock()
    real = time.time_ns()
    with patched_wall_clock(clock):
        assert time.time_ns() == EPOCH_NS
        clock.advance(2.5)
        clock.wall_offset_ms = -1000
        assert time.time_ns() == EPOCH_NS + 1_500_000_000
        assert time.time() == (EPOCH_NS + 1_500_000_000) / 1e9
    assert time.time_ns() >= real
