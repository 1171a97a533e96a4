"""The built-in ``KeyDirectory`` backends run ``chatcore.testing.KeyDirectorySuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.keys import KeyDirectory, MemoryKeyDirectory, SqliteKeyDirectory
from chatcore.keys.redis import RedisKeyDirectory
from chatcore.store.cassandra import CassandraStores
from chatcore.testing import KeyDirectorySuite

Make = Callable[[], Awaitable[KeyDirectory]]


class TestMemory(KeyDirectorySuite):
    @pytest.fixture
    def make_directory(self) -> Make:
        async def make() -> KeyDirectory:
            return MemoryKeyDirectory()

        return make


class TestSqlite(KeyDirectorySuite):
    @pytest.fixture
    def make_directory(self, tmp_path: Path) -> Make:
        async def make() -> KeyDirectory:
            return SqliteKeyDirectory(tmp_path / "keys.db")

        return make


@pytest.mark.services
class TestRedis(KeyDirectorySuite):
    @pytest.fixture
    def make_directory(self, redis_url: str, redis_prefix: Callable[[], str]) -> Make:
        async def make() -> KeyDirectory:
            return RedisKeyDirectory(redis_url, prefix=redis_prefix())

        return make


@pytest.mark.services
class TestCassandra(KeyDirectorySuite):
    @pytest.fixture
    def make_directory(self, cassandra_stores: Callable[[], Awaitable[CassandraStores]]) -> Make:
        async def make() -> KeyDirectory:
            return (await cassandra_stores()).keys()

        return make
