"""What every Redis adapter shares, against the real server: clients, prefixes, slots, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from chatcore._redis import RedisAdapter
from chatcore.bus.redis import RedisGatewayBus
from chatcore.cache.redis import RedisHotCache
from chatcore.errors import ChatcoreClosed, InvalidRequest, Unavailable
from chatcore.ids.redis import RedisNodeIdLease
from chatcore.model import Connection, StoredMessage
from chatcore.offline.redis import RedisOfflineIndex
from chatcore.presence.redis import RedisPresenceStore
from chatcore.registry.redis import RedisConnectionRegistry
from tests.services import REDIS_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

DOWN_URL = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: every connection is refused at once."""

ADAPTERS: list[Callable[..., RedisAdapter]] = [
    RedisPresenceStore,
    RedisConnectionRegistry,
    RedisGatewayBus,
    RedisHotCache,
    RedisOfflineIndex,
    RedisNodeIdLease,
]


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


def message(chat_id: str, seq: int) -> StoredMessage:
    return StoredMessage(chat_id, seq, seq, "ann", f"c{seq}", "text", "hi", 1_750_000_000_000)


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("bad", ["app{1}:", "app}:"])
def test_a_prefix_with_braces_is_refused(adapter: Callable[..., RedisAdapter], bad: str) -> None:
    with pytest.raises(InvalidRequest, match="prefix"):
        adapter(REDIS_URL, prefix=bad)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_a_client_that_decodes_responses_is_refused(
    adapter: Callable[..., RedisAdapter],
) -> None:
    async with Redis.from_url(REDIS_URL, decode_responses=True) as decoding:
        with pytest.raises(InvalidRequest, match="decode_responses"):
            adapter(decoding)


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_an_adapter_closes_the_client_it_made_and_aclose_is_idempotent(
    adapter: Callable[..., RedisAdapter],
) -> None:
    require("redis")
    name = unique("owned-")
    async with Redis.from_url(REDIS_URL) as admin:
        instance = adapter(f"{REDIS_URL}?client_name={name}")
        async with instance:
            await instance._redis.client.ping()
            assert name in {c["name"] for c in await admin.client_list()}
        await instance.aclose()
        with anyio.fail_after(2):  # the server sees the socket close a moment later
            while name in {c["name"] for c in await admin.client_list()}:
                await anyio.sleep(0.01)
    with pytest.raises(ChatcoreClosed):
        _ = instance._redis.client


@pytest.mark.parametrize("adapter", ADAPTERS)
async def test_a_borrowed_client_stays_open(
    adapter: Callable[..., RedisAdapter], client: Redis
) -> None:
    async with adapter(client):
        pass
    assert await client.ping() is True


async def test_every_key_is_under_the_prefix_and_a_users_keys_share_a_slot(
    client: Redis, prefix: str
) -> None:
    user, chat = unique("ann-"), unique("chat-")
    conn = Connection(user, "phone", unique("gw-"), "c1")
    async with (
        RedisPresenceStore(client, prefix=prefix) as presence,
        RedisConnectionRegistry(client, prefix=prefix) as registry,
        RedisHotCache(client, prefix=prefix) as cache,
        RedisOfflineIndex(client, prefix=prefix) as offline,
        RedisNodeIdLease(client, prefix=prefix, node_ids=range(1)) as leases,
    ):
        await presence.touch(user, "phone", ttl_s=30, now_ms=1_750_000_000_000)
        await registry.register(conn, ttl_s=30)
        await cache.push([message(chat, 1)])
        await offline.add([user], chat, 1)
        await leases.acquire("node-a", ttl_s=30)

    ours = {key.decode() async for key in client.scan_iter(match=f"*{user}*", count=1000)}
    ours |= {key.decode() async for key in client.scan_iter(match=f"*{chat}*", count=1000)}
    everything = {key.decode() async for key in client.scan_iter(match=f"{prefix}*", count=1000)}
    assert ours and all(key.startswith(prefix) for key in ours)
    assert everything >= ours
    slots_by_area: dict[str, set[int]] = {}
    for key in ours:
        if conn.gateway not in key:
            area = key[len(prefix) :].split(":", 1)[0]
            slots_by_area.setdefault(area, set()).add(key_slot(key.encode()))
    assert set(slots_by_area) == {"presence", "registry", "cache", "offline"}
    assert all(len(slots) == 1 for slots in slots_by_area.values()), slots_by_area
    assert f"{prefix}node:{{0}}" in everything


Call = Callable[[], Awaitable[object]]


def _calls() -> list[tuple[str, Callable[[str], tuple[RedisAdapter, Call]]]]:
    def presence(url: str) -> tuple[RedisAdapter, Call]:
        store = RedisPresenceStore(url)
        return store, lambda: store.touch("ann", "phone", ttl_s=30, now_ms=1)

    def registry(url: str) -> tuple[RedisAdapter, Call]:
        registry = RedisConnectionRegistry(url)
        return registry, lambda: registry.lookup(["ann"])

    def bus(url: str) -> tuple[RedisAdapter, Call]:
        bus = RedisGatewayBus(url)
        return bus, lambda: bus.publish("gw", b"x")

    async def enter(bus: RedisGatewayBus) -> None:
        async with bus.subscribe("gw"):
            pass

    def subscribe(url: str) -> tuple[RedisAdapter, Call]:
        bus = RedisGatewayBus(url)
        return bus, lambda: enter(bus)

    def cache(url: str) -> tuple[RedisAdapter, Call]:
        cache = RedisHotCache(url)
        return cache, lambda: cache.push([message("chat", 1)])

    def offline(url: str) -> tuple[RedisAdapter, Call]:
        index = RedisOfflineIndex(url)
        return index, lambda: index.pending("ann")

    def leases(url: str) -> tuple[RedisAdapter, Call]:
        leases = RedisNodeIdLease(url)
        return leases, lambda: leases.acquire("node", ttl_s=30)

    return [
        ("presence", presence),
        ("registry", registry),
        ("bus.publish", bus),
        ("bus.subscribe", subscribe),
        ("cache", cache),
        ("offline", offline),
        ("leases", leases),
    ]


@pytest.mark.parametrize(("name", "make"), _calls(), ids=[name for name, _ in _calls()])
async def test_a_server_that_is_down_raises_unavailable_from_the_redis_error(
    name: str, make: Callable[[str], tuple[RedisAdapter, Call]]
) -> None:
    adapter, call = make(DOWN_URL)
    async with adapter:
        with pytest.raises(Unavailable) as info:
            await call()
    assert info.value.retriable
    assert isinstance(info.value.__cause__, RedisConnectionError)
