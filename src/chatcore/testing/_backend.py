"""What every suite shares: the hook a subclass fills in, and the instances it opens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Generic, TypeVar

from chatcore._resource import AsyncResource

__all__ = ["Make", "StoreEnv"]

R = TypeVar("R", bound=AsyncResource)

Make = Callable[[], Awaitable[R]]
"""A suite's hook: a new, not yet entered instance of the backend under test."""


class StoreEnv(Generic[R]):
    """One backend under test: ``open`` instances over this test's storage."""

    def __init__(self, make: Make[R], stack: AsyncExitStack, *, durable: bool) -> None:
        self._make = make
        self._stack = stack
        self.durable = durable

    async def open(self) -> R:
        """An instance over this test's storage (empty at first); closed after the test."""
        resource = await self._make()
        await resource.__aenter__()
        self._stack.push_async_callback(resource.aclose)
        return resource
