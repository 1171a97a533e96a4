"""Admission follows the gateway's delivery on both serving paths (issue 13): while the
connections' writers take their events too late after acceptance, a send over the
wire is answered ``overloaded`` (retriable, ``retry_after_ms``), and taken again once
the queues have drained."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.events import MessageEvent
from chatcore.model import StoredMessage
from tests.e2e.conftest import RunningServer, embedded_settings, running
from tests.e2e.test_server_protocol import hello, raw, recv_type

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["native", "asgi"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running(embedded_settings(tmp_path), native=request.param == "native") as srv:
        yield srv


def _send(request_id: int, chat: str) -> str:
    return json.dumps(
        {"type": "send", "id": request_id, "chat": chat, "client_msg_id": str(uuid.uuid4()),
         "kind": "text", "body": "hi"}
    )  # fmt: skip


async def test_a_send_is_refused_while_the_queues_are_behind(server: RunningServer) -> None:
    node = server.node
    lag = node.delivery_lag
    assert lag is not None
    now = [0]
    node.hub.clock = lambda: now[0]  # the gateway's clock, stopped: windows move by hand
    async with raw(server) as alice:
        await hello(alice, server.token("alice"))
        await alice.send(json.dumps({"type": "chat.create", "id": 2, "kind": "group",
                                     "members": ["bob"], "title": "t"}))  # fmt: skip
        chat = (await recv_type(alice, "chat"))["chat"]["chat"]
        (conn,) = node.hub.connections
        now[0] = 10_000
        for seq in range(1, 11):  # ten events accepted at 0 ms, each taken on its own
            message = StoredMessage(chat, seq, seq, "bob", f"b{seq}", "text", "x", ts=0)
            node.hub.dispatch([conn.info.conn_id], MessageEvent(message))
            assert (await recv_type(alice, "message"))["seq"] == seq
        now[0] += lag.window_ms  # that window is complete: it was late
        await alice.send(_send(3, chat))
        refused = await recv_type(alice, "error")
        assert refused["id"] == 3 and refused["code"] == "overloaded"
        assert refused["retry_after_ms"] == 250
        now[0] += lag.window_ms  # a window in which nothing was taken late: drained
        await alice.send(_send(4, chat))
        assert (await recv_type(alice, "accepted"))["id"] == 4
    assert lag.refused == 1
