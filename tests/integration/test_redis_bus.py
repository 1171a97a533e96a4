"""``RedisGatewayBus`` beyond the conformance suite: across clients, and a lost connection."""

from __future__ import annotations

import anyio
import pytest
from redis.asyncio import Redis

from chatcore.bus.redis import RedisGatewayBus
from tests.services import REDIS_URL, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

WAIT_S = 5.0


@pytest.fixture
def prefix() -> str:
    require("redis")
    return unique("test:")


async def test_a_gateway_gets_what_another_process_publishes(prefix: str) -> None:
    async with (
        RedisGatewayBus(REDIS_URL, prefix=prefix) as gateway,
        RedisGatewayBus(REDIS_URL, prefix=prefix) as worker,
        gateway.subscribe("gw-1") as payloads,
    ):
        for i in range(50):
            await worker.publish("gw-1", b"%d" % i)
        with anyio.fail_after(WAIT_S):
            assert [await anext(payloads) for _ in range(50)] == [b"%d" % i for i in range(50)]


async def test_prefixes_keep_deployments_apart(prefix: str) -> None:
    async with (
        RedisGatewayBus(REDIS_URL, prefix=prefix) as ours,
        RedisGatewayBus(REDIS_URL, prefix=f"{prefix}other:") as theirs,
        ours.subscribe("gw") as payloads,
    ):
        await theirs.publish("gw", b"theirs")
        await ours.publish("gw", b"ours")
        with anyio.fail_after(WAIT_S):
            assert await anext(payloads) == b"ours"


async def test_a_subscription_whose_connection_is_killed_reconnects(prefix: str) -> None:
    name = unique("bus-")
    async with (
        Redis.from_url(REDIS_URL) as admin,
        RedisGatewayBus(f"{REDIS_URL}?client_name={name}", prefix=prefix) as bus,
        bus.subscribe("gw") as payloads,
    ):
        await bus.publish("gw", b"before")
        with anyio.fail_after(WAIT_S):
            assert await anext(payloads) == b"before"
        subscribers = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name]
        assert len(subscribers) == 1
        await admin.client_kill_filter(_id=subscribers[0]["id"])

        got: list[bytes] = []

        async def read() -> None:
            got.append(await anext(payloads))

        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read)
                while not got:
                    await bus.publish("gw", b"after")
                    await anyio.sleep(0.05)
        assert got == [b"after"]


async def test_leaving_a_subscription_gives_its_connection_back(prefix: str) -> None:
    name = unique("bus-")
    async with (
        Redis.from_url(REDIS_URL) as admin,
        RedisGatewayBus(f"{REDIS_URL}?client_name={name}", prefix=prefix) as bus,
    ):

        async def subscribers() -> int:
            return sum(c["name"] == name for c in await admin.client_list(_type="pubsub"))

        async with bus.subscribe("gw-1"), bus.subscribe("gw-2"):
            assert await subscribers() == 2
        assert await subscribers() == 0
