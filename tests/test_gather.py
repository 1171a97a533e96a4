"""``both``: two calls at once, their results, and an error raised as itself."""

from __future__ import annotations

import anyio
import pytest

from chatcore._gather import both, concurrently
from chatcore.errors import Unavailable

pytestmark = pytest.mark.anyio


async def test_both_results_in_order_and_concurrently() -> None:
    started: list[str] = []
    gate = anyio.Event()

    async def first() -> int:
        started.append("first")
        await gate.wait()  # only returns once the second has started
        return 1

    async def second() -> str:
        started.append("second")
        gate.set()
        return "two"

    with anyio.fail_after(5):
        assert await both(first, second) == (1, "two")
    assert started == ["first", "second"]


async def test_an_error_is_raised_as_itself_and_cancels_the_other() -> None:
    cancelled = anyio.Event()

    async def slow() -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def broken() -> None:
        raise Unavailable("the log is down")

    with pytest.raises(Unavailable, match="the log is down"):
        await both(slow, broken)
    assert cancelled.is_set()


async def test_both_failing_at_once_raise_the_first_error() -> None:
    async def down(name: str) -> None:
        raise Unavailable(name)

    with pytest.raises(Unavailable, match="first"):
        await both(lambda: down("first"), lambda: down("second"))


@pytest.mark.parametrize(("items", "limit"), [(10, 3), (3, 3), (5, 2), (4, 1)])
async def test_concurrently_runs_every_item_at_most_limit_at_a_time(items: int, limit: int) -> None:
    running = 0
    peak = 0
    done: list[int] = []

    async def call(item: int) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.001)
        running -= 1
        done.append(item)

    with anyio.fail_after(5):
        await concurrently(call, range(items), limit=limit)
    assert sorted(done) == list(range(items))
    assert peak == min(limit, items)
