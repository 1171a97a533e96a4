"""``RedisNodeIdLease`` beyond the conformance suite: several processes, Redis's clock, fencing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest
from redis.asyncio import Redis

from chatcore.errors import Fenced
from chatcore.ids.redis import RedisNodeIdLease
from tests.services import REDIS_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    require("redis")
    name = unique("test:")
    yield name
    async with Redis.from_url(REDIS_URL) as client:
        keys = [key async for key in client.scan_iter(match=f"{name}*", count=1000)]
        if keys:
            await client.delete(*keys)


_PROCESS = """
import json, sys, anyio
from chatcore.ids.redis import RedisNodeIdLease

async def main(url, prefix, owner):
    async with RedisNodeIdLease(url, prefix=prefix, node_ids=range(40)) as leases:
        got = [(await leases.acquire(owner, ttl_s=30)).node_id for _ in range(10)]
    print(json.dumps(got))

anyio.run(main, *sys.argv[1:])
"""


async def test_processes_starting_together_never_share_a_node_id(prefix: str) -> None:
    results: list[list[int]] = []

    async def run(owner: str) -> None:
        args = [sys.executable, "-c", _PROCESS, REDIS_URL, prefix, owner]
        done = await anyio.run_process(args, check=False, stderr=subprocess.STDOUT)
        assert done.returncode == 0, done.stdout.decode()
        results.append(json.loads(done.stdout))

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(run, f"process-{i}")

    assert sorted(node_id for got in results for node_id in got) == list(range(40))


async def test_expiry_is_by_redis_clock_and_the_key_names_its_holder(prefix: str) -> None:
    async with (
        Redis.from_url(REDIS_URL) as client,
        RedisNodeIdLease(client, prefix=prefix) as leases,
    ):
        before_s, before_us = await client.time()
        lease = await leases.acquire("node-a", ttl_s=5)
        after_s, after_us = await client.time()

        assert before_s * 1000 + before_us // 1000 + 5000 <= lease.expires_at_ms
        assert lease.expires_at_ms <= after_s * 1000 + after_us // 1000 + 5000
        key = f"{prefix}node:{{{lease.node_id}}}"
        assert await client.get(key) == f"{lease.token}:node-a".encode()
        assert 4000 < await client.pttl(key) <= 5000


async def test_a_lease_whose_key_was_deleted_is_fenced(prefix: str) -> None:
    async with (
        Redis.from_url(REDIS_URL) as client,
        RedisNodeIdLease(client, prefix=prefix) as leases,
    ):
        lease = await leases.acquire("node-a", ttl_s=30)
        await client.delete(f"{prefix}node:{{{lease.node_id}}}")
        with pytest.raises(Fenced, match=f"node id {lease.node_id}"):
            await leases.renew(lease)


async def test_the_token_not_the_instance_decides_who_holds(prefix: str) -> None:
    async with (
        RedisNodeIdLease(REDIS_URL, prefix=prefix, node_ids=range(5, 6)) as a,
        RedisNodeIdLease(REDIS_URL, prefix=prefix, node_ids=range(5, 6)) as b,
    ):
        held = await a.acquire("a", ttl_s=30)
        forged = msgspec.structs.replace(held, token="someone-else")

        await b.release(forged)
        with pytest.raises(Fenced):
            await b.renew(forged)
        assert (await b.renew(held)).node_id == 5

        await b.release(held)
        assert (await a.acquire("c", ttl_s=30)).node_id == 5


@pytest.mark.parametrize("node_ids", [range(0), range(1020, 1030), range(-1, 3)])
def test_node_ids_outside_0_to_1023_are_refused(node_ids: range) -> None:
    with pytest.raises(ValueError, match="node_ids"):
        RedisNodeIdLease(REDIS_URL, node_ids=node_ids)
