"""``RedisOfflineIndex`` beyond the conformance suite: any order of seqs, racing writers, caps."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from chatcore.errors import InvalidRequest
from chatcore.offline import PendingChat
from chatcore.offline.redis import RedisOfflineIndex
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


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60))
def test_pending_counts_each_distinct_seq_in_any_order(prefix: str, seqs: list[int]) -> None:
    user = unique("ann-")

    async def check() -> None:
        async with RedisOfflineIndex(REDIS_URL, prefix=prefix, max_runs=100) as index:
            for seq in seqs:
                await index.add([user], "chat", seq)
            got = await index.pending(user)
        assert got == [PendingChat("chat", min(seqs), max(seqs), len(set(seqs)))]

    anyio.run(check)


@pytest.mark.anyio
async def test_racing_writers_count_a_redelivered_seq_once(prefix: str) -> None:
    users = [f"u{i}" for i in range(8)]
    async with (
        RedisOfflineIndex(REDIS_URL, prefix=prefix) as a,
        RedisOfflineIndex(REDIS_URL, prefix=prefix) as b,
    ):
        async with anyio.create_task_group() as tg:
            for seq in range(1, 101):
                tg.start_soon(a.add, users, "chat", seq)
                tg.start_soon(b.add, users, "chat", seq)
        for user in users:
            assert await b.pending(user) == [PendingChat("chat", 1, 100, 100)]


@pytest.mark.anyio
async def test_past_max_runs_the_oldest_hole_is_forgotten(prefix: str) -> None:
    async with RedisOfflineIndex(REDIS_URL, prefix=prefix, max_runs=2) as index:
        for seq in (1, 3, 5):
            await index.add(["ann"], "chat", seq)
        assert await index.pending("ann") == [PendingChat("chat", 1, 5, 3)]

        await index.add(["ann"], "chat", 2)  # in the merged hole: taken as counted
        assert await index.pending("ann") == [PendingChat("chat", 1, 5, 3)]
        await index.add(["ann"], "chat", 4)  # in the hole still kept: counted
        await index.add(["ann"], "chat", 9)
        assert await index.pending("ann") == [PendingChat("chat", 1, 9, 5)]


@pytest.mark.anyio
async def test_a_ttl_expires_what_a_user_missed(prefix: str) -> None:
    async with (
        Redis.from_url(REDIS_URL) as client,
        RedisOfflineIndex(client, prefix=prefix, ttl_s=0.2) as index,
    ):
        await index.add(["ann"], "chat", 1)
        assert 0 < await client.pttl(f"{prefix}offline:{{u:ann}}") <= 200
        await anyio.sleep(0.3)
        assert await index.pending("ann") == []


@pytest.mark.anyio
async def test_chat_ids_are_kept_verbatim(prefix: str) -> None:
    odd = "chat|1-2,3 {ü}"
    async with RedisOfflineIndex(REDIS_URL, prefix=prefix) as index:
        await index.add(["ann"], odd, 4)
        await index.add(["ann"], "plain", 2)
        assert await index.pending("ann") == [
            PendingChat(odd, 4, 4, 1),
            PendingChat("plain", 2, 2, 1),
        ]


@pytest.mark.parametrize("options", [{"max_runs": 0}, {"ttl_s": 0.0}])
def test_options_out_of_range_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(InvalidRequest):
        RedisOfflineIndex(REDIS_URL, **options)  # type: ignore[arg-type]
