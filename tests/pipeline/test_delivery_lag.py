"""Admission follows the gateway's own delivery (issue 13): while this gateway hands
messages to its connections too late after acceptance, its sends are refused."""

from __future__ import annotations

import pytest

from chatcore._clock import wall_ms
from chatcore.errors import InvalidRequest, Overloaded
from chatcore.events import MessageEvent
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.backpressure import DeliveryLag
from chatcore.protocol.frames import AcceptedFrame, ErrorFrame, Send
from chatcore.server.handler import RequestHandler

WINDOW = 100


def late(rule: DeliveryLag, count: int, now: int, lag: int = 300) -> None:
    for _ in range(count):
        rule.observe(lag, now)


def test_deliveries_on_time_never_refuse() -> None:
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW)
    for now in range(0, 1000, 5):
        late(rule, 50, now, lag=250)  # at the bound is on time
        rule.check(now)
    assert rule.refused == 0


def test_a_late_window_refuses_the_next_and_an_empty_one_admits_again() -> None:
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW, retry_after_ms=123)
    late(rule, 20, now=0)
    assert not rule.refusing(99)  # judged once the window is complete
    with pytest.raises(Overloaded) as refused:
        rule.check(100)
    assert refused.value.retriable and refused.value.retry_after_ms == 123
    assert rule.refusing(199) and rule.refused == 1
    assert not rule.refusing(200)  # nothing was late (nothing handed on) in [100, 200)


def test_a_window_of_on_time_deliveries_admits_again() -> None:
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW)
    late(rule, 20, now=0)
    assert rule.refusing(100)
    late(rule, 20, now=150, lag=40)
    assert rule.refusing(199) and not rule.refusing(200)


def test_a_few_late_messages_do_not_refuse() -> None:
    """Below ``min_late``, or below ``late_share`` of the window, lateness is noise
    (one message held up by a pause of the process)."""
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW, late_share=0.1, min_late=8)
    late(rule, 7, now=0)
    assert not rule.refusing(100)
    late(rule, 9, now=100)
    late(rule, 100, now=100, lag=10)  # 9 of 109 late: under a tenth
    assert not rule.refusing(200)
    late(rule, 12, now=200)
    late(rule, 100, now=200, lag=10)  # 12 of 112
    assert rule.refusing(300)


def test_a_clock_that_steps_back_starts_a_new_window() -> None:
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW)
    late(rule, 20, now=1000)
    assert not rule.refusing(500)
    late(rule, 20, now=520)
    assert rule.refusing(620)


def test_the_bound_has_a_safe_default_and_is_checked() -> None:
    options = NodeOptions()
    assert options.max_delivery_lag_s == 0.25 and options.delivery_lag_window_s == 0.1
    node = ChatNode.in_memory()
    assert node.delivery_lag is not None and node.delivery_lag.max_lag_ms == 250
    assert node.hub.lag is node.delivery_lag
    assert ChatNode.in_memory(max_delivery_lag_s=None).delivery_lag is None
    for bad in ({"max_delivery_lag_s": 0.0}, {"delivery_lag_window_s": -1.0}):
        with pytest.raises(InvalidRequest):
            ChatNode.in_memory(**bad)
    for args in (
        {"max_lag_ms": 0},
        {"window_ms": 0},
        {"retry_after_ms": 0},
        {"late_share": 0.0},
        {"min_late": -1},
    ):
        with pytest.raises(InvalidRequest, match=next(iter(args))):
            DeliveryLag(**args)


@pytest.mark.anyio
async def test_sends_are_refused_while_the_gateway_hands_messages_on_late() -> None:
    """The hub's clock stands still ``behind`` ms ahead of the Router's: bob's
    connection takes every message that late, as if it had waited in the gateway's
    queues. Sends are refused in the next window, and admitted once a window
    passes in which nothing is handed on late."""
    start = wall_ms()
    behind = [0]
    async with ChatNode.in_memory(max_delivery_backlog=None) as node:
        node.hub.clock = lambda: start + behind[0]
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        async with node.connect("bob", "phone") as bob:
            behind[0] = 2000  # the test may take a second or so: still late
            for i in range(10):  # one take of bob's queue per message: ten late reports
                await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
                await node.settled()
                [event] = await bob.receive_many()
                assert isinstance(event, MessageEvent) and event.message.client_msg_id == f"m{i}"
            behind[0] += WINDOW  # the window with the late messages is complete
            with pytest.raises(Overloaded) as refused:
                await node.send("alice", chat.chat_id, client_msg_id="m10", body="x")
            assert refused.value.retry_after_ms == 250
            await node.settled()
            assert bob.take_nowait() == []  # nothing was appended
            behind[0] += WINDOW  # a window with nothing handed on late: drained
            await node.send("alice", chat.chat_id, client_msg_id="m10", body="x")
            assert node.delivery_lag is not None and node.delivery_lag.refused == 1


def test_a_send_that_waited_longer_than_the_bound_is_refused() -> None:
    rule = DeliveryLag(max_lag_ms=250, window_ms=WINDOW)
    rule.check_waited(250)  # at the bound is on time
    with pytest.raises(Overloaded, match="waited 251 ms") as refused:
        rule.check_waited(251)
    assert refused.value.retry_after_ms == 250
    assert rule.refused == 1
    rule.check(0)  # a refusal of a late send does not make the next ones refused


@pytest.mark.anyio
@pytest.mark.parametrize("bounded", [True, False])
async def test_a_send_that_waited_behind_its_connections_requests_is_refused(
    bounded: bool,
) -> None:
    """The handler refuses a ``send`` that waited longer than the bound at the gateway
    (behind the connection's earlier requests, a backlog the takes do not see); nothing
    is appended. Without the bound, it is accepted."""
    options = {} if bounded else {"max_delivery_lag_s": None}
    async with ChatNode.in_memory(max_delivery_backlog=None, **options) as node:
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        async with node.connect("alice", "phone") as alice, node.connect("bob", "p") as bob:
            handler = RequestHandler(node, alice)
            late = Send(id=1, chat=chat.chat_id, client_msg_id="m1", kind="text", body="x")
            [answer] = await handler.handle(late, waited_s=0.3)
            if bounded:
                assert isinstance(answer, ErrorFrame)
                assert (answer.id, answer.code, answer.retry_after_ms) == (1, "overloaded", 250)
                await node.settled()
                assert bob.take_nowait() == []  # nothing was appended
            else:
                assert isinstance(answer, AcceptedFrame)
            on_time = Send(id=2, chat=chat.chat_id, client_msg_id="m2", kind="text", body="y")
            [answer] = await handler.handle(on_time, waited_s=0.2)
            assert isinstance(answer, AcceptedFrame)
