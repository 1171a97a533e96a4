"""Awaiting independent calls together: the time of the slowest, not of their sum.

:func:`concurrently` runs one call per item (at most ``limit`` at a time);
:func:`both` runs two different calls and returns both results (a topic's end offsets
and a group's committed offsets each cost a round trip to the log; awaited one after
the other they cost two). The first error cancels the rest and is raised as itself
(not wrapped in an ``ExceptionGroup``; when several fail in the same step, the first
one's), so callers keep catching :class:`~chatcore.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import anyio

__all__ = ["both", "concurrently"]

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")


async def concurrently(
    call: Callable[[T], Awaitable[None]], items: Iterable[T], *, limit: int = 64
) -> None:
    """``await call(item)`` for every item, at most ``limit`` at a time.

    If a call raises, the others are cancelled and its exception is raised as it is
    (not in an exception group).
    """
    todo = list(items)
    if len(todo) <= 1 or limit <= 1:
        for item in todo:
            await call(item)
        return
    # A task group and each task in it cost tens of microseconds, more than many a
    # call: the calling task runs the first item itself, and a limiter is made only
    # when there are more items than ``limit``.
    limiter = anyio.CapacityLimiter(limit) if len(todo) > limit else None
    failures: list[Exception] = []

    async def run(item: T, scope: anyio.CancelScope) -> None:
        try:
            if limiter is None:
                await call(item)
            else:
                async with limiter:
                    await call(item)
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for item in todo[1:]:
            tg.start_soon(run, item, tg.cancel_scope)
        await run(todo[0], tg.cancel_scope)
    if failures:
        raise failures[0]


async def both(
    first: Callable[[], Awaitable[A]], second: Callable[[], Awaitable[B]]
) -> tuple[A, B]:
    """Run ``first()`` and ``second()`` concurrently; their results."""
    calls: tuple[Callable[[], Awaitable[Any]], ...] = (first, second)
    results: list[Any] = [None, None]

    async def run(i: int) -> None:
        results[i] = await calls[i]()

    await concurrently(run, (0, 1))
    return results[0], results[1]
