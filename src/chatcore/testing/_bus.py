"""``GatewayBus`` conformance: what every backend of the port must do.

Gateway names are unique per test. ``subscribe`` must be listening when its context
manager has entered. The bus may lose payloads under overload, but never in these
tests: nothing here outruns a reader by more than a few hundred payloads.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest
from anyio.abc import TaskStatus

from chatcore.bus._base import GatewayBus
from chatcore.errors import ChatcoreClosed
from chatcore.testing._backend import Make

__all__ = ["GatewayBusSuite"]


WAIT_S = 2.0


class BusEnv:
    """One backend under test: a fresh ``bus`` and gateway names no other test uses."""

    def __init__(self, bus: GatewayBus) -> None:
        self.bus = bus
        self._tag = uuid.uuid4().hex[:8]

    def gateway(self, name: str) -> str:
        return f"{name}-{self._tag}"


async def receive(payloads: AsyncIterator[bytes], n: int = 1) -> list[bytes]:
    with anyio.fail_after(WAIT_S):
        return [await anext(payloads) for _ in range(n)]


class GatewayBusSuite:
    """The ``GatewayBus`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_bus``: it returns an async callable giving a new, not
    yet entered, empty ``GatewayBus`` (a fresh key prefix on a shared service). The suite
    enters it and closes it after the test.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_bus(self) -> Make[GatewayBus]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_bus fixture")

    @pytest.fixture
    async def env(self, make_bus: Make[GatewayBus]) -> AsyncIterator[BusEnv]:
        async with AsyncExitStack() as stack:
            yield BusEnv(await stack.enter_async_context(await make_bus()))

    async def test_subscriber_gets_payloads_in_publish_order(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        sent = [f"m{i}".encode() for i in range(200)]
        async with env.bus.subscribe(gw) as payloads:
            for payload in sent:
                await env.bus.publish(gw, payload)
            assert await receive(payloads, len(sent)) == sent

    async def test_payload_bytes_arrive_unchanged(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        sent = [b"", b"\x00\xff\x00", bytes(range(256)), "héllo ✓".encode(), b"x" * 100_000]
        async with env.bus.subscribe(gw) as payloads:
            for payload in sent:
                await env.bus.publish(gw, payload)
            assert await receive(payloads, len(sent)) == sent

    async def test_every_subscriber_of_a_gateway_gets_every_payload(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        async with env.bus.subscribe(gw) as first, env.bus.subscribe(gw) as second:
            await env.bus.publish(gw, b"one")
            await env.bus.publish(gw, b"two")
            assert await receive(first, 2) == [b"one", b"two"]
            assert await receive(second, 2) == [b"one", b"two"]

    async def test_gateways_do_not_see_each_others_payloads(self, env: BusEnv) -> None:
        gw1, gw2 = env.gateway("gw1"), env.gateway("gw2")
        async with env.bus.subscribe(gw1) as one, env.bus.subscribe(gw2) as two:
            await env.bus.publish(gw1, b"for-1")
            await env.bus.publish(gw2, b"for-2")
            await env.bus.publish(gw1, b"for-1-again")
            assert await receive(one, 2) == [b"for-1", b"for-1-again"]
            assert await receive(two, 1) == [b"for-2"]

    async def test_payload_without_subscribers_is_dropped(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        await env.bus.publish(gw, b"lost")
        async with env.bus.subscribe(gw) as payloads:
            await env.bus.publish(gw, b"kept")
            assert await receive(payloads) == [b"kept"]

    async def test_subscription_ends_at_its_context_exit(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        async with env.bus.subscribe(gw) as payloads:
            await env.bus.publish(gw, b"before")
            assert await receive(payloads) == [b"before"]
        await env.bus.publish(gw, b"after")
        async with env.bus.subscribe(gw) as again:
            await env.bus.publish(gw, b"new")
            assert await receive(again) == [b"new"]

    async def test_publish_does_not_wait_for_a_subscriber_that_does_not_read(
        self, env: BusEnv
    ) -> None:
        gw = env.gateway("gw")
        async with env.bus.subscribe(gw), env.bus.subscribe(gw) as reader:
            with anyio.fail_after(WAIT_S):
                for i in range(300):
                    await env.bus.publish(gw, b"%d" % i)
            assert await receive(reader, 300) == [b"%d" % i for i in range(300)]

    async def test_concurrent_reader_sees_publish_order(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        got: list[bytes] = []

        async def read(task_status: TaskStatus[None]) -> None:
            async with env.bus.subscribe(gw) as payloads:
                task_status.started()
                async for payload in payloads:
                    got.append(payload)
                    if len(got) == 100:
                        return

        with anyio.fail_after(WAIT_S):
            async with anyio.create_task_group() as tg:
                await tg.start(read)
                for i in range(100):
                    await env.bus.publish(gw, b"%d" % i)
        assert got == [b"%d" % i for i in range(100)]

    async def test_publish_many_keeps_list_order_per_gateway(self, env: BusEnv) -> None:
        gw1, gw2 = env.gateway("gw1"), env.gateway("gw2")
        async with env.bus.subscribe(gw1) as one, env.bus.subscribe(gw2) as two:
            await env.bus.publish(gw1, b"single-before")
            batch = [(gw1 if i % 3 else gw2, b"%d" % i) for i in range(300)]
            await env.bus.publish_many(batch)
            await env.bus.publish_many([])
            await env.bus.publish(gw2, b"single-after")
            expected_one = [b"single-before"] + [p for g, p in batch if g == gw1]
            expected_two = [p for g, p in batch if g == gw2] + [b"single-after"]
            assert await receive(one, len(expected_one)) == expected_one
            assert await receive(two, len(expected_two)) == expected_two

    async def test_publish_many_to_a_gateway_without_subscribers_drops_only_those(
        self,
        env: BusEnv,
    ) -> None:
        gw, nobody = env.gateway("gw"), env.gateway("nobody")
        async with env.bus.subscribe(gw) as payloads:
            await env.bus.publish_many(
                [(nobody, b"lost"), (gw, b"a"), (nobody, b"lost"), (gw, b"b")]
            )
            assert await receive(payloads, 2) == [b"a", b"b"]

    async def test_aclose_ends_open_subscriptions_and_is_idempotent(self, env: BusEnv) -> None:
        gw = env.gateway("gw")
        ended = anyio.Event()

        async def read(task_status: TaskStatus[None]) -> None:
            async with env.bus.subscribe(gw) as payloads:
                task_status.started()
                async for _ in payloads:
                    pass
            ended.set()

        async with anyio.create_task_group() as tg:
            await tg.start(read)
            await env.bus.publish(gw, b"x")
            await env.bus.aclose()
            await env.bus.aclose()
            with anyio.fail_after(WAIT_S):
                await ended.wait()

        with pytest.raises(ChatcoreClosed):
            await env.bus.publish(gw, b"late")
        with pytest.raises(ChatcoreClosed):
            await env.bus.publish_many([(gw, b"late")])
        with pytest.raises(ChatcoreClosed):
            async with env.bus.subscribe(gw):
                pass

    async def test_context_manager_enters_as_itself(self, env: BusEnv) -> None:
        async with env.bus as entered:
            assert entered is env.bus
        with pytest.raises(ChatcoreClosed):
            await env.bus.publish(env.gateway("gw"), b"late")
