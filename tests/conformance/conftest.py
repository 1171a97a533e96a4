"""Fixtures that give the real-service backends of the conformance tests fresh space.

Each fails the test (never skips it) when its service is not reachable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import anyio.to_thread
import pytest

from chatcore._redis import make_client
from chatcore.store.cassandra import CassandraStores
from tests.services import CASSANDRA_HOSTS, REDIS_CLUSTER_URL, REDIS_URL, require, unique


@pytest.fixture(
    params=[
        pytest.param("redis", id="single"),
        pytest.param("redis-cluster", id="cluster", marks=pytest.mark.cluster),
    ]
)
def redis_url(request: pytest.FixtureRequest) -> str:
    """Each Redis conformance test runs twice: on the single server and on the three
    primaries of ``scripts/services start redis-cluster`` (failing if that is down)."""
    service: str = request.param
    require(service)
    return REDIS_CLUSTER_URL if service == "redis-cluster" else REDIS_URL


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[Callable[[], str]]:
    """Fresh Redis key prefixes; every key under them is deleted after the test."""
    prefixes: list[str] = []

    def fresh() -> str:
        prefixes.append(unique("test:"))
        return prefixes[-1]

    yield fresh
    client = make_client(redis_url, timeout_s=5.0)
    try:
        for prefix in prefixes:
            # On a cluster, SCAN visits every primary; DEL one key at a time (slots).
            keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
            for key in keys:
                await client.delete(key)
    finally:
        await client.aclose()


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
