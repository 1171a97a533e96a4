"""A refused flat-out sender waits as the server asks; a paced one keeps its schedule."""

from __future__ import annotations

import time

import anyio
import pytest

from benchmarks.loadgen import Job, LoadGenerator
from chatcore.errors import Overloaded

pytestmark = pytest.mark.anyio


class Refusing:
    """A driver whose every send is refused with ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int) -> None:
        self.retry_after_ms = retry_after_ms
        self.sends = 0

    async def send(self, room: str, body: str) -> None:
        self.sends += 1
        await anyio.lowlevel.checkpoint()
        raise Overloaded("busy", retry_after_ms=self.retry_after_ms)


async def test_a_refused_flat_out_sender_waits_retry_after_before_sending_again() -> None:
    job = Job(target="chatcore-memory", url="ws://unused", run_id="r", secret="s" * 32)
    generator = LoadGenerator(job)
    driver = Refusing(retry_after_ms=200)
    start = time.monotonic_ns()
    await generator._flat_out(driver, "room", start, start + 500_000_000)  # type: ignore[arg-type]
    # at 0, 200 and 400 ms; sending again at once would make thousands of refusals
    assert 2 <= driver.sends <= 4
    assert generator.counters.refused == driver.sends
    assert generator.counters.errors == 0
