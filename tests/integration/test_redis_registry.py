"""``RedisConnectionRegistry`` beyond the conformance suite: sharing, key expiry, big gateways."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import anyio
import pytest
from redis.asyncio import Redis

from chatcore.errors import InvalidRequest
from chatcore.model import Connection
from chatcore.registry.redis import RedisConnectionRegistry
from tests.services import REDIS_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

LONG_TTL_S = 30.0


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    require("redis")
    name = unique("test:")
    yield name
    async with Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{name}*", count=1000)]
        if keys:
            await client.delete(*keys)


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    require("redis")
    async with Redis.from_url(REDIS_URL) as redis:
        yield redis


def conn(user: str, device: str = "phone", gateway: str = "gw-1") -> Connection:
    return Connection(user, device, gateway, uuid.uuid4().hex)


async def test_two_registries_share_one_view(prefix: str) -> None:
    async with (
        RedisConnectionRegistry(REDIS_URL, prefix=prefix) as a,
        RedisConnectionRegistry(REDIS_URL, prefix=prefix) as b,
    ):
        phone, web = conn("ann", "phone", "gw-1"), conn("ann", "web", "gw-2")
        await a.register(phone, ttl_s=LONG_TTL_S)
        await b.register(web, ttl_s=LONG_TTL_S)
        assert sorted((await a.lookup(["ann"]))["ann"], key=lambda c: c.device) == [phone, web]

        await b.drop_gateway("gw-1")
        assert await a.lookup(["ann"]) == {"ann": [web]}


async def test_a_users_keys_expire_with_their_last_connection(prefix: str, client: Redis) -> None:
    async with RedisConnectionRegistry(client, prefix=prefix) as registry:
        await registry.register(conn("ann", gateway="gw-1"), ttl_s=0.1)
        await registry.register(conn("ann", gateway="gw-1"), ttl_s=0.2)
        keys = [
            f"{prefix}registry:{{u:ann}}:conns",
            f"{prefix}registry:{{u:ann}}:deadlines",
            f"{prefix}registry:{{g:gw-1}}:conns",
        ]
        assert await client.exists(*keys) == 3
        ttls = [await client.pttl(key) for key in keys]
        assert all(100 < ttl <= 200 for ttl in ttls), ttls

        await anyio.sleep(0.3)

        assert await client.exists(*keys) == 0


async def test_the_gateway_index_lives_as_long_as_its_longest_registration(
    prefix: str, client: Redis
) -> None:
    async with RedisConnectionRegistry(client, prefix=prefix) as registry:
        await registry.register(conn("ann"), ttl_s=LONG_TTL_S)
        await registry.register(conn("bob"), ttl_s=0.1)
        assert await client.pttl(f"{prefix}registry:{{g:gw-1}}:conns") > 0.5 * LONG_TTL_S * 1000


async def test_drop_gateway_goes_past_its_batch_size(prefix: str) -> None:
    async with RedisConnectionRegistry(REDIS_URL, prefix=prefix, drop_batch=7) as registry:
        dropped = [conn(f"u{i % 10}", f"d{i}", "gw-1") for i in range(50)]
        kept = [conn(f"u{i}", "other", "gw-2") for i in range(10)]
        for c in [*dropped, *kept]:
            await registry.register(c, ttl_s=LONG_TTL_S)

        await registry.drop_gateway("gw-1")

        got = await registry.lookup([f"u{i}" for i in range(10)])
        assert got == {c.user: [c] for c in kept}


async def test_a_conn_id_names_one_connection(prefix: str) -> None:
    async with RedisConnectionRegistry(REDIS_URL, prefix=prefix) as registry:
        first = Connection("ann", "phone", "gw-1", "c1")
        moved = Connection("ann", "phone", "gw-2", "c1")
        await registry.register(first, ttl_s=LONG_TTL_S)
        await registry.register(moved, ttl_s=LONG_TTL_S)
        assert await registry.lookup(["ann"]) == {"ann": [moved]}

        await registry.unregister(first)
        assert await registry.lookup(["ann"]) == {"ann": [moved]}
        await registry.drop_gateway("gw-1")
        assert await registry.lookup(["ann"]) == {"ann": [moved]}
        await registry.unregister(moved)
        assert await registry.lookup(["ann"]) == {}


async def test_concurrent_registers_and_unregisters_settle_consistently(prefix: str) -> None:
    conns = [conn(f"u{i % 5}", f"d{i}") for i in range(100)]
    async with (
        RedisConnectionRegistry(REDIS_URL, prefix=prefix) as a,
        RedisConnectionRegistry(REDIS_URL, prefix=prefix) as b,
    ):

        async def churn(c: Connection, registry: RedisConnectionRegistry) -> None:
            await registry.register(c, ttl_s=LONG_TTL_S)
            if c.device.endswith(("0", "5")):
                await registry.unregister(c)

        async with anyio.create_task_group() as tg:
            for i, c in enumerate(conns):
                tg.start_soon(churn, c, (a, b)[i % 2])

        got = await a.lookup([f"u{i}" for i in range(5)])
    expected = {c for c in conns if not c.device.endswith(("0", "5"))}
    assert {c for found in got.values() for c in found} == expected


def test_a_drop_batch_below_one_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        RedisConnectionRegistry(REDIS_URL, drop_batch=0)
