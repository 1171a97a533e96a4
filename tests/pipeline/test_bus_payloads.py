"""One bus payload may carry several envelopes for a gateway, read in order by its hub."""

from __future__ import annotations

import anyio
import msgspec
import pytest

from chatcore.events import (
    Envelope,
    PresenceEvent,
    decode_envelope,
    decode_envelopes,
    encode_envelope,
    join_envelopes,
)
from chatcore.model import PresenceState
from chatcore.node import ChatNode


def envelope(i: int) -> Envelope:
    return Envelope((f"c{i}",), PresenceEvent((PresenceState("u", i % 2 == 0, i),)))


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 65_535, 65_536])
def test_joined_envelopes_decode_in_order_whatever_their_number(n: int) -> None:
    # 15/16 and 65,535/65,536 cross MessagePack's fixarray / array 16 / array 32 headers
    envelopes = [envelope(i) for i in range(n)]
    joined = join_envelopes([encode_envelope(e) for e in envelopes])
    assert decode_envelopes(joined) == envelopes


def test_one_envelope_is_sent_as_it_is_and_read_by_both_decoders() -> None:
    single = encode_envelope(envelope(7))
    assert join_envelopes([single]) == single  # what a gateway of an older release reads
    assert decode_envelopes(single) == [envelope(7)] and decode_envelope(single) == envelope(7)


def test_bad_payloads_are_refused() -> None:
    with pytest.raises(ValueError):
        join_envelopes([])
    for junk in (b"\x93\x01\x02\x03", b"not msgpack", join_envelopes([b"\x01", b"\x02"])):
        with pytest.raises(msgspec.DecodeError):
            decode_envelopes(junk)


@pytest.mark.anyio
async def test_the_hub_queues_a_joined_payloads_events_in_order() -> None:
    async with (
        ChatNode.in_memory() as node,
        node.connect("alice", "phone") as phone,
        node.connect("alice", "laptop") as laptop,
    ):
        conns = (phone.info.conn_id, laptop.info.conn_id)
        events = [PresenceEvent((PresenceState(f"u{i}", True, i),)) for i in range(5)]
        payloads = [encode_envelope(Envelope(conns[: 1 + i % 2], e)) for i, e in enumerate(events)]
        await node.backends.bus.publish(node.gateway_id, join_envelopes(payloads))
        with anyio.fail_after(5):
            assert [await phone.receive() for _ in range(5)] == events
            assert [await laptop.receive() for _ in range(2)] == [events[1], events[3]]


@pytest.mark.anyio
async def test_the_hub_lets_writers_run_while_it_queues_a_large_payload() -> None:
    async with ChatNode.in_memory() as node, node.connect("alice", "phone") as phone:
        events = [PresenceEvent((PresenceState(f"u{i}", True, i),)) for i in range(100)]
        conns = (phone.info.conn_id,)
        joined = join_envelopes([encode_envelope(Envelope(conns, e)) for e in events])
        taken: list[int] = []

        async def writer() -> None:
            while sum(taken) < len(events):
                taken.append(len(await phone.receive_many()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            await anyio.wait_all_tasks_blocked()  # the writer waits for its first event
            await node.backends.bus.publish(node.gateway_id, joined)
        assert sum(taken) == 100
        assert taken[0] < 100, "the writer ran before the whole payload was queued"
