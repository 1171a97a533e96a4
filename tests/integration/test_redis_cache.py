"""``RedisHotCache`` beyond the conformance suite: the rule for any pushes, writers racing, TTLs."""

from __future__ import annotations

import random
from collections.abc import Iterator

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from chatcore.cache.redis import RedisHotCache
from chatcore.errors import InvalidRequest
from chatcore.model import StoredMessage
from tests.services import REDIS_URL, require, unique

pytestmark = pytest.mark.services


@pytest.fixture
def prefix() -> Iterator[str]:
    """A fresh key prefix, its keys deleted afterwards (sync: the property tests use it)."""
    require("redis")
    name = unique("test:")
    yield name
    with SyncRedis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{name}*", count=1000))
        if keys:
            client.delete(*keys)


def msg(chat_id: str, seq: int, body: str | None = None) -> StoredMessage:
    body = f"m{seq}" if body is None else body
    return StoredMessage(chat_id, seq, 1_000 + seq, "ann", f"c{seq}", "text", body, seq)


async def seqs_of(cache: RedisHotCache, chat_id: str) -> list[int]:
    return [m.seq for m in await cache.recent(chat_id)]


_batches = st.lists(st.lists(st.integers(1, 12), max_size=5), max_size=25)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_batches, st.integers(1, 6))
def test_redis_cache_matches_the_rule_for_any_pushes(
    prefix: str, batches: list[list[int]], per_chat: int
) -> None:
    """Each push has its own bodies, so this also checks which copy of a seq is kept."""
    chat = unique("chat-")

    async def check() -> None:
        model: dict[int, str] = {}
        async with RedisHotCache(REDIS_URL, prefix=prefix, per_chat=per_chat) as cache:
            for n, batch in enumerate(batches):
                pushed = [msg(chat, seq, f"push {n} #{i}") for i, seq in enumerate(batch)]
                await cache.push(pushed)
                known = {m.seq: m.body for m in reversed(pushed)} | model
                window: dict[int, str] = {}
                seq = max(known, default=0)
                while seq in known and len(window) < per_chat:
                    window[seq] = known[seq]
                    seq -= 1
                model = dict(sorted(window.items()))
                got = await cache.recent(chat)
                assert [(m.seq, m.body) for m in got] == list(model.items())

    anyio.run(check)


@pytest.mark.anyio
async def test_racing_writers_keep_the_cache_contiguous(prefix: str) -> None:
    seqs = list(range(1, 301))
    random.Random(7).shuffle(seqs)
    async with (
        RedisHotCache(REDIS_URL, prefix=prefix, per_chat=50) as a,
        RedisHotCache(REDIS_URL, prefix=prefix, per_chat=50) as b,
    ):

        async def write(cache: RedisHotCache, mine: list[int]) -> None:
            for i in range(0, len(mine), 3):
                await cache.push([msg("chat", s) for s in mine[i : i + 3]])
                got = await seqs_of(cache, "chat")
                assert got == list(range(got[0], got[0] + len(got))), got

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, a, seqs[::2])
            tg.start_soon(write, b, seqs[1::2])
        got = await seqs_of(a, "chat")
    assert got[-1] == 300
    assert 1 <= len(got) <= 50


@pytest.mark.anyio
async def test_a_chat_expires_when_idle(prefix: str) -> None:
    async with (
        Redis.from_url(REDIS_URL) as client,
        RedisHotCache(client, prefix=prefix, idle_ttl_s=0.2) as cache,
        RedisHotCache(client, prefix=prefix, idle_ttl_s=None) as keeps,
    ):
        await cache.push([msg("idle", 1)])
        await keeps.push([msg("kept", 1)])
        assert 0 < await client.pttl(f"{prefix}cache:{{c:idle}}:messages") <= 200
        assert 0 < await client.pttl(f"{prefix}cache:{{c:idle}}:top") <= 200
        assert await client.pttl(f"{prefix}cache:{{c:kept}}:messages") == -1

        await anyio.sleep(0.3)

        assert await cache.recent("idle") == []
        assert await seqs_of(cache, "kept") == [1]
        await cache.push([msg("idle", 7)])
        assert await seqs_of(cache, "idle") == [7]


@pytest.mark.anyio
async def test_a_smaller_per_chat_trims_on_the_next_push(prefix: str) -> None:
    async with RedisHotCache(REDIS_URL, prefix=prefix, per_chat=10) as wide:
        await wide.push([msg("chat", s) for s in range(1, 11)])
    async with RedisHotCache(REDIS_URL, prefix=prefix, per_chat=3) as narrow:
        await narrow.push([msg("chat", 5)])
        assert await seqs_of(narrow, "chat") == [8, 9, 10]


@pytest.mark.parametrize("options", [{"per_chat": 0}, {"idle_ttl_s": 0.0}])
def test_options_out_of_range_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(InvalidRequest):
        RedisHotCache(REDIS_URL, **options)  # type: ignore[arg-type]
