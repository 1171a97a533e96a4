"""Fixtures that give the real-service backends of the conformance tests fresh space.

Each fails the test (never skips it) when its service is not reachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import anyio.to_thread
import pytest
from redis.asyncio import Redis

from chatcore.store.cassandra import CassandraStores
from tests.services import CASSANDRA_HOSTS, REDIS_URL, require, unique


@pytest.fixture
async def redis_prefix() -> AsyncIterator[Callable[[], str]]:
    """Fresh Redis key prefixes; every key under them is deleted after the test."""
    require("redis")
    prefixes: list[str] = []

    def fresh() -> str:
        prefixes.append(unique("test:"))
        return prefixes[-1]

    yield fresh
    async with Redis.from_url(REDIS_URL) as client:
        for prefix in prefixes:
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            if keys:
                await client.delete(*keys)


@pytest.fixture
async def cassandra_stores() -> AsyncIterator[Callable[[], Awaitable[CassandraStores]]]:
    """Connections to one fresh keyspace (created on first connect, dropped after the test)."""
    require("cassandra")
    keyspace = unique("conformance_")
    async with AsyncExitStack() as stack:

        async def connect() -> CassandraStores:
            stores = await CassandraStores.connect(CASSANDRA_HOSTS.split(","), keyspace)
            await stack.enter_async_context(stores)
            drop = f"DROP KEYSPACE IF EXISTS {keyspace}"
            stack.push_async_callback(anyio.to_thread.run_sync, stores.session.execute, drop)
            return stores

        yield connect
