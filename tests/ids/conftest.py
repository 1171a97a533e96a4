"""Fixtures of the ids tests.

``lease_backend`` runs the ``NodeIdLease`` conformance suite once per backend. To add
a backend, add its name to ``LEASE_BACKENDS`` and a branch to ``_lease_env``: each
``open`` must give an instance over a fresh, empty lease space (a new key prefix on a
real service), and ``advance`` must let time pass for the leases (a fake clock, or a
real sleep for a real service).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import pytest

from chatcore.ids import NodeIdLease
from chatcore.ids.memory import MemoryNodeIdLease

from ._fakes import FakeClock

LEASE_BACKENDS = ["memory"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LeaseEnv:
    """One backend under test: ``open`` fresh instances, ``advance`` time for them."""

    def __init__(
        self,
        open_lease: Callable[[range], Awaitable[NodeIdLease]],
        advance: Callable[[float], Awaitable[None]],
    ) -> None:
        self._open = open_lease
        self._advance = advance

    async def open(self, *, node_ids: range = range(1024)) -> NodeIdLease:
        """A backend instance over a fresh lease space of ``node_ids``; closed after the test."""
        return await self._open(node_ids)

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the backend's lease clock."""
        await self._advance(seconds)


@pytest.fixture(params=LEASE_BACKENDS)
async def lease_backend(request: pytest.FixtureRequest) -> AsyncIterator[LeaseEnv]:
    async with AsyncExitStack() as stack:
        yield _lease_env(request.param, stack)


def _lease_env(name: str, stack: AsyncExitStack) -> LeaseEnv:
    if name == "memory":
        clock = FakeClock(1_750_000_000_000)

        async def open_memory(node_ids: range) -> NodeIdLease:
            lease = MemoryNodeIdLease(clock=clock, node_ids=node_ids)
            return await stack.enter_async_context(lease)

        async def advance(seconds: float) -> None:
            clock.advance(seconds * 1000)

        return LeaseEnv(open_memory, advance)
    raise AssertionError(f"no lease backend named {name!r}")
