"""The built-in ``OfflineIndex`` backends run ``chatcore.testing.OfflineIndexSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from chatcore.offline import MemoryOfflineIndex, OfflineIndex
from chatcore.offline.redis import RedisOfflineIndex
from chatcore.testing import OfflineIndexSuite


class TestMemory(OfflineIndexSuite):
    @pytest.fixture
    def make_index(self) -> Callable[[], Awaitable[OfflineIndex]]:
        async def make() -> OfflineIndex:
            return MemoryOfflineIndex()

        return make


@pytest.mark.services
class TestRedis(OfflineIndexSuite):
    @pytest.fixture
    def make_index(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[], Awaitable[OfflineIndex]]:
        async def make() -> OfflineIndex:
            return RedisOfflineIndex(redis_url, prefix=redis_prefix())

        return make
