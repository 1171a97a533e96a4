"""The built-in ``NodeIdLease`` backends run ``chatcore.testing.NodeIdLeaseSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatcore.ids import NodeIdLease
from chatcore.ids.memory import MemoryNodeIdLease
from chatcore.ids.redis import RedisNodeIdLease
from chatcore.testing import NodeIdLeaseSuite
from tests.ids._fakes import FakeClock


class TestMemory(NodeIdLeaseSuite):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(1_750_000_000_000)

    @pytest.fixture
    def make_lease(self, clock: FakeClock) -> Callable[[range], Awaitable[NodeIdLease]]:
        async def make(node_ids: range) -> NodeIdLease:
            return MemoryNodeIdLease(clock=clock, node_ids=node_ids)

        return make

    @pytest.fixture
    def advance(self, clock: FakeClock) -> Callable[[float], Awaitable[None]]:
        async def advance(seconds: float) -> None:
            clock.advance(seconds * 1000)

        return advance


@pytest.mark.services
class TestRedis(NodeIdLeaseSuite):
    @pytest.fixture
    def make_lease(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[range], Awaitable[NodeIdLease]]:
        async def make(node_ids: range) -> NodeIdLease:
            return RedisNodeIdLease(redis_url, prefix=redis_prefix(), node_ids=node_ids)

        return make
