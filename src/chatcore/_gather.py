"""Awaiting two independent calls together: the time of the slower, not of their sum.

Two reads that do not depend on each other (a topic's end offsets and a group's
committed offsets) each cost a round trip to the log; awaited one after the other
they cost two. :func:`both` runs them in one task group and returns both results.
The first error cancels the other and is raised as itself (not wrapped in an
``ExceptionGroup``; when both fail in the same step, the first one's), so callers keep
catching :class:`~chatcore.errors.Unavailable`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

__all__ = ["both"]

A = TypeVar("A")
B = TypeVar("B")


async def both(
    first: Callable[[], Awaitable[A]], second: Callable[[], Awaitable[B]]
) -> tuple[A, B]:
    """Run ``first()`` and ``second()`` concurrently; their results."""
    results: list[Any] = [None, None]

    async def run(i: int, call: Callable[[], Awaitable[Any]]) -> None:
        results[i] = await call()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, first)
            tg.start_soon(run, 1, second)
    except BaseExceptionGroup as group:
        errors = group.exceptions
        if all(isinstance(error, Exception) for error in errors):
            raise errors[0] from None  # both may fail at once (the same outage)
        raise
    return results[0], results[1]
