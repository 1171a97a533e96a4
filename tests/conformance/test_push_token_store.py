"""The built-in ``PushTokenStore`` backends run ``chatcore.testing.PushTokenStoreSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.push import MemoryPushTokenStore, PushTokenStore
from chatcore.push.redis import RedisPushTokenStore
from chatcore.push.sqlite import SqlitePushTokenStore
from chatcore.store.cassandra import CassandraStores
from chatcore.testing import PushTokenStoreSuite

Make = Callable[[], Awaitable[PushTokenStore]]


class TestMemory(PushTokenStoreSuite):
    @pytest.fixture
    def make_store(self) -> Make:
        async def make() -> PushTokenStore:
            return MemoryPushTokenStore()

        return make


class TestSqlite(PushTokenStoreSuite):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Make:
        async def make() -> PushTokenStore:
            return SqlitePushTokenStore(tmp_path / "push.db")

        return make


@pytest.mark.services
class TestRedis(PushTokenStoreSuite):
    @pytest.fixture
    def make_store(self, redis_url: str, redis_prefix: Callable[[], str]) -> Make:
        async def make() -> PushTokenStore:
            return RedisPushTokenStore(redis_url, prefix=redis_prefix())

        return make


@pytest.mark.services
class TestCassandra(PushTokenStoreSuite):
    @pytest.fixture
    def make_store(self, cassandra_stores: Callable[[], Awaitable[CassandraStores]]) -> Make:
        async def make() -> PushTokenStore:
            return (await cassandra_stores()).push_tokens()

        return make
