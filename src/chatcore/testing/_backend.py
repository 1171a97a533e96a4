"""What every suite shares: the hook a subclass fills in, and the instances it opens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import ClassVar, Generic, TypeVar

import pytest

from chatcore._resource import AsyncResource

__all__ = ["Make", "StoreEnv", "StoreSuite"]

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


class StoreSuite(Generic[R]):
    """What the durable stores' suites share: the ``make_store`` hook, ``env`` and ``store``."""

    pytestmark = pytest.mark.anyio
    durable: ClassVar[bool] = False

    @pytest.fixture
    def make_store(self) -> Make[R]:
        """Override: new instances of the backend under test over this test's storage."""
        raise NotImplementedError("override the make_store fixture")

    @pytest.fixture
    async def env(self, make_store: Make[R]) -> AsyncIterator[StoreEnv[R]]:
        async with AsyncExitStack() as stack:
            yield StoreEnv(make_store, stack, durable=self.durable)

    @pytest.fixture
    async def store(self, env: StoreEnv[R]) -> R:
        return await env.open()
