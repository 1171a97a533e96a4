"""The I/O half of fanout: one registry lookup and one bus call for many events."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chatcore.bus.memory import MemoryGatewayBus
from chatcore.errors import InvalidRequest
from chatcore.fanout import Fanout, FanoutPlanner, publish_to_members
from chatcore.model import Connection
from chatcore.registry.memory import MemoryConnectionRegistry

pytestmark = pytest.mark.anyio


class RecordingBus(MemoryGatewayBus):
    """Keeps every ``publish_many`` call's payloads."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[tuple[str, bytes]]] = []

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        self.calls.append(list(payloads))
        await super().publish_many(payloads)


class CountingRegistry(MemoryConnectionRegistry):
    """Counts ``lookup`` round trips."""

    lookups = 0

    async def lookup(self, users: Sequence[str]) -> dict[str, list[Connection]]:
        self.lookups += 1
        return await super().lookup(users)


def encode(conns: tuple[str, ...], event: str) -> bytes:
    return f"{event}->{','.join(conns)}".encode()


CONNS = [
    Connection("alice", "phone", "gw-a", "a1"),
    Connection("alice", "laptop", "gw-b", "a2"),
    Connection("bob", "phone", "gw-a", "b1"),
]


async def registered() -> tuple[RecordingBus, CountingRegistry]:
    bus, registry = RecordingBus(), CountingRegistry()
    for conn in CONNS:
        await registry.register(conn, ttl_s=60)
    return bus, registry


async def test_many_events_take_one_lookup_and_one_bus_call_in_add_order() -> None:
    bus, registry = await registered()
    fanout = Fanout(bus, registry, FanoutPlanner(), encode)
    await fanout.lookup(["alice", "bob", "carol", "alice"])
    assert fanout.add(["alice", "bob"], "m1") == ()
    assert fanout.add(["alice", "carol"], "m2") == ("carol",)
    assert fanout.add(["alice", "bob"], "m3") == ()
    assert bus.calls == []
    await fanout.publish()
    assert registry.lookups == 1
    assert bus.calls == [
        [
            ("gw-a", b"m1->a1,b1"),
            ("gw-b", b"m1->a2"),
            ("gw-a", b"m2->a1"),
            ("gw-b", b"m2->a2"),
            ("gw-a", b"m3->a1,b1"),
            ("gw-b", b"m3->a2"),
        ]
    ]


async def test_publish_sends_only_what_was_added_since_the_last_one() -> None:
    bus, registry = await registered()
    fanout = Fanout(bus, registry, FanoutPlanner(), encode)
    await fanout.lookup(["bob"])
    fanout.add(["bob"], "m1")
    await fanout.publish()
    await fanout.publish()
    assert bus.calls == [[("gw-a", b"m1->b1")]]


async def test_publish_to_members_returns_who_is_offline() -> None:
    bus, registry = await registered()
    offline = await publish_to_members(
        bus, registry, FanoutPlanner(), ["bob", "carol", "dave"], "hi", encode=encode
    )
    assert offline == ("carol", "dave")
    assert bus.calls == [[("gw-a", b"hi->b1")]]
    assert registry.lookups == 1


async def test_nobody_online_publishes_nothing() -> None:
    bus, registry = RecordingBus(), CountingRegistry()
    offline = await publish_to_members(
        bus, registry, FanoutPlanner(), ["carol"], "hi", encode=encode
    )
    assert offline == ("carol",)
    assert bus.calls == []


def joined(payloads: Sequence[bytes]) -> bytes:
    return b"[" + b"|".join(payloads) + b"]"


async def test_combined_each_gateway_gets_one_payload_of_its_events_in_add_order() -> None:
    bus, registry = await registered()
    fanout = Fanout(bus, registry, FanoutPlanner(), encode, combine=joined)
    await fanout.lookup(["alice", "bob"])
    for event in ("m1", "m2", "m3"):
        fanout.add(["alice", "bob"], event)
    await fanout.publish()
    assert bus.calls == [
        [("gw-a", b"[m1->a1,b1|m2->a1,b1|m3->a1,b1]"), ("gw-b", b"[m1->a2|m2->a2|m3->a2]")]
    ]


async def test_combined_payloads_are_cut_at_max_payload_bytes() -> None:
    bus, registry = await registered()
    # each "mN->b1" is 6 bytes: two fit in 12, a third starts a new payload
    fanout = Fanout(bus, registry, FanoutPlanner(), encode, combine=joined, max_payload_bytes=12)
    await fanout.lookup(["bob"])
    for event in ("m1", "m2", "m3", "m4", "m5", "a-much-longer-event"):
        fanout.add(["bob"], event)
    await fanout.publish()
    assert bus.calls == [
        [
            ("gw-a", b"[m1->b1|m2->b1]"),
            ("gw-a", b"[m3->b1|m4->b1]"),
            ("gw-a", b"[m5->b1]"),
            ("gw-a", b"[a-much-longer-event->b1]"),  # larger than the bound: alone
        ]
    ]


async def test_max_payload_bytes_must_be_positive() -> None:
    bus, registry = await registered()
    with pytest.raises(InvalidRequest, match="max_payload_bytes"):
        Fanout(bus, registry, FanoutPlanner(), encode, combine=joined, max_payload_bytes=0)
