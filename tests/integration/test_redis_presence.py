"""``RedisPresenceStore`` beyond the conformance suite: several stores (processes) on one Redis."""

from __future__ import annotations

import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest
from redis.asyncio import Redis

from chatcore.errors import InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence.redis import RedisPresenceStore
from tests.services import REDIS_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

T0 = 1_750_000_000_000
LONG_TTL_S = 30.0
WAIT_S = 5.0


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


async def stores(stack: AsyncExitStack, prefix: str, n: int) -> list[RedisPresenceStore]:
    """``n`` stores over one prefix, each with its own client, like ``n`` processes."""
    return [
        await stack.enter_async_context(RedisPresenceStore(REDIS_URL, prefix=prefix))
        for _ in range(n)
    ]


async def test_a_transition_made_by_one_store_reaches_the_others(prefix: str) -> None:
    async with AsyncExitStack() as stack:
        a, b = await stores(stack, prefix, 2)
        changes = await stack.enter_async_context(b.changes())

        await a.touch("ann", "phone", ttl_s=LONG_TTL_S, now_ms=T0)
        await b.leave("ann", "phone", now_ms=T0 + 5)

        with anyio.fail_after(WAIT_S):
            got = [await anext(changes), await anext(changes)]
        assert got == [PresenceState("ann", True, T0), PresenceState("ann", False, T0 + 5)]
        assert await a.states(["ann"], now_ms=T0 + 6) == {
            "ann": PresenceState("ann", False, T0 + 5)
        }


async def test_concurrent_first_touches_bring_the_user_online_once(prefix: str) -> None:
    async with AsyncExitStack() as stack:
        many = await stores(stack, prefix, 4)
        changes = await stack.enter_async_context(many[0].changes())
        came_online: list[bool] = []

        async def touch(store: RedisPresenceStore, device: str) -> None:
            came_online.append(await store.touch("ann", device, ttl_s=LONG_TTL_S, now_ms=T0))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(touch, many[i % 4], f"device-{i}")
        await many[1].touch("marker", "phone", ttl_s=LONG_TTL_S, now_ms=T0)

        assert sorted(came_online) == [False] * 19 + [True]
        with anyio.fail_after(WAIT_S):
            got = [await anext(changes), await anext(changes)]
        assert [c.user for c in got] == ["ann", "marker"]


async def test_concurrent_expire_calls_report_each_user_once(prefix: str) -> None:
    users = [f"u{i}" for i in range(200)]
    async with AsyncExitStack() as stack:
        many = await stores(stack, prefix, 3)
        for user in users:
            await many[0].touch(user, "phone", ttl_s=0.1, now_ms=T0)
        reported: list[PresenceState] = []

        async def expire(store: RedisPresenceStore) -> None:
            reported.extend(await store.expire(now_ms=T0 + 100))

        async with anyio.create_task_group() as tg:
            for store in many:
                tg.start_soon(expire, store)

    assert sorted(s.user for s in reported) == sorted(users)
    assert all(s == PresenceState(s.user, False, T0) for s in reported)


async def test_expire_goes_past_its_batch_size(prefix: str) -> None:
    async with RedisPresenceStore(REDIS_URL, prefix=prefix, shards=2, expire_batch=3) as store:
        for i in range(20):
            await store.touch(f"u{i}", "phone", ttl_s=0.1, now_ms=T0 + i)
        await store.touch("stays", "phone", ttl_s=LONG_TTL_S, now_ms=T0)

        gone = await store.expire(now_ms=T0 + 200)

        assert [s.user for s in gone] == sorted(f"u{i}" for i in range(20))
        assert await store.expire(now_ms=T0 + 200) == []
        assert (await store.states(["stays"], now_ms=T0 + 200))["stays"].online


async def test_states_of_many_users_over_every_shard(prefix: str) -> None:
    users = [f"user-{i}" for i in range(500)]
    async with RedisPresenceStore(REDIS_URL, prefix=prefix) as store:
        for i, user in enumerate(users[::2]):
            await store.touch(user, "phone", ttl_s=LONG_TTL_S, now_ms=T0 + i)

        got = await store.states([*reversed(users), "nobody"], now_ms=T0 + 1000)

    assert list(got) == [*reversed(users), "nobody"]
    assert [u for u, s in got.items() if s.online] == list(reversed(users[::2]))
    assert got["user-4"] == PresenceState("user-4", True, T0 + 2)
    assert got["user-5"] == PresenceState("user-5", False, None)


async def test_names_that_need_escaping_survive_the_changes_channel(prefix: str) -> None:
    odd = 'quo"te \\ back/slash }{ ü ✓ \n'
    async with RedisPresenceStore(REDIS_URL, prefix=prefix) as store, store.changes() as changes:
        await store.touch(odd, "phone", ttl_s=LONG_TTL_S, now_ms=T0)
        with anyio.fail_after(WAIT_S):
            assert await anext(changes) == PresenceState(odd, True, T0)
        assert (await store.states([odd], now_ms=T0))[odd].online


async def test_foreign_payloads_on_the_channel_are_skipped(prefix: str, client: Redis) -> None:
    async with RedisPresenceStore(client, prefix=prefix) as store, store.changes() as changes:
        await client.publish(f"{prefix}presence:changes", b"not json")
        await client.publish(f"{prefix}presence:changes", b'{"user": 1}')
        await store.touch("ann", "phone", ttl_s=LONG_TTL_S, now_ms=T0)
        with anyio.fail_after(WAIT_S):
            assert await anext(changes) == PresenceState("ann", True, T0)


async def test_keys_hold_the_rules_state_and_leave_no_garbage(prefix: str, client: Redis) -> None:
    async with RedisPresenceStore(client, prefix=prefix, shards=1) as store:
        await store.touch("ann", "phone", ttl_s=60, now_ms=T0)
        await store.touch("ann", "web", ttl_s=30, now_ms=T0 + 10)
        devices, seen = (
            f"{prefix}presence:{{p:0}}:devices:ann",
            f"{prefix}presence:{{p:0}}:seen:ann",
        )
        index = f"{prefix}presence:{{p:0}}:expiry"

        assert await client.zrange(devices, 0, -1, withscores=True) == [
            (b"web", T0 + 30_010),
            (b"phone", T0 + 60_000),
        ]
        assert await client.zscore(index, "ann") == T0 + 30_010
        assert await client.get(seen) == str(T0 + 10).encode()

        await store.leave("ann", "web", now_ms=T0 + 20)
        await store.leave("ann", "phone", now_ms=T0 + 30)

        assert await client.exists(devices) == 0
        assert await client.zscore(index, "ann") is None
        assert await client.get(seen) == str(T0 + 30).encode()
        assert await client.pttl(seen) == -1


async def test_last_seen_ttl_makes_the_user_forgotten(prefix: str, client: Redis) -> None:
    async with RedisPresenceStore(client, prefix=prefix, last_seen_ttl_s=0.2) as store:
        await store.touch("ann", "phone", ttl_s=0.1, now_ms=T0)
        assert 0 < await client.pttl(f"{prefix}presence:{{p:{_shard('ann')}}}:seen:ann") <= 200
        await anyio.sleep(0.3)
        got = await store.states(["ann"], now_ms=T0 + 100)
        assert got == {"ann": PresenceState("ann", False, None)}


@pytest.mark.parametrize(
    "options", [{"shards": 0}, {"expire_batch": 0}, {"last_seen_ttl_s": 0.0}, {"timeout_s": 0}]
)
def test_options_out_of_range_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(InvalidRequest):
        RedisPresenceStore(REDIS_URL, **options)  # type: ignore[arg-type]


_OTHER_PROCESS = """
import sys, anyio
from chatcore.presence.redis import RedisPresenceStore

async def main(url, prefix, now):
    async with RedisPresenceStore(url, prefix=prefix) as store:
        await store.touch("from-another-process", "phone", ttl_s=30, now_ms=now)
        await store.leave("from-another-process", "phone", now_ms=now + 1)

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""


async def test_changes_cross_process_boundaries(prefix: str) -> None:
    now = int(time.time() * 1000)
    async with RedisPresenceStore(REDIS_URL, prefix=prefix) as store, store.changes() as changes:
        args = [sys.executable, "-c", _OTHER_PROCESS, REDIS_URL, prefix, str(now)]
        done = await anyio.run_process(args, check=False, stderr=subprocess.STDOUT)
        assert done.returncode == 0, done.stdout.decode()
        with anyio.fail_after(WAIT_S):
            got = [await anext(changes), await anext(changes)]
    user = "from-another-process"
    assert got == [PresenceState(user, True, now), PresenceState(user, False, now + 1)]


def _shard(user: str, shards: int = 64) -> int:
    """The shard the store puts ``user`` in (crc32, like the store)."""
    return zlib.crc32(user.encode()) % shards
