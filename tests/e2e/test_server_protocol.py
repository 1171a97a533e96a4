"""The reference server over real sockets with a bare WebSocket client: the wire contract."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin, Subprotocol

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def raw(
    server: RunningServer, subprotocol: str = "chatcore.v1.json"
) -> AsyncIterator[ClientConnection]:
    offered = [Subprotocol(subprotocol)]
    async with connect(server.ws_url, subprotocols=offered, max_size=8 * 1024 * 1024) as ws:
        yield ws


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        data = await ws.recv()
    if isinstance(data, bytes):
        return dict(msgspec.msgpack.decode(data))
    return dict(json.loads(data))


async def recv_type(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        while (frame := await recv(ws))["type"] != kind:
            pass
    return frame


async def hello(ws: ClientConnection, token: str, device: str = "d1") -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", "id": 1, "token": token, "device": device}))
    return await recv(ws)


async def closed_with(ws: ClientConnection) -> int | None:
    with anyio.fail_after(15):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None


async def test_hello_welcome_ping(server: RunningServer) -> None:
    async with raw(server) as ws:
        welcome = await hello(ws, server.token("alice"), "phone-1")
        assert welcome == {
            "type": "welcome",
            "id": 1,
            "user": "alice",
            "device": "phone-1",
            "heartbeat_s": 30,
        }
        await ws.send('{"type":"ping","id":7}')
        assert await recv(ws) == {"type": "pong", "id": 7}


async def test_a_conversation_over_the_wire(server: RunningServer) -> None:
    async with raw(server) as alice, raw(server, "chatcore.v1.msgpack") as bob:
        await hello(alice, server.token("alice"))
        await bob.send(
            msgspec.msgpack.encode(
                {"type": "hello", "id": 1, "token": server.token("bob"), "device": "b"}
            )
        )
        assert (await recv(bob))["type"] == "welcome"
        await alice.send(
            json.dumps({"type": "chat.create", "id": 2, "kind": "direct", "members": ["bob"]})
        )
        chat = (await recv_type(alice, "chat"))["chat"]
        assert chat["members"] == ["alice", "bob"] and chat["title"] is None
        assert chat["last_seq"] == 0
        cmid = str(uuid.uuid4())
        send = {
            "type": "send",
            "id": 3,
            "chat": chat["chat"],
            "client_msg_id": cmid,
            "kind": "text",
            "body": "hi",
        }
        await alice.send(json.dumps(send))
        accepted = await recv_type(alice, "accepted")
        assert accepted["id"] == 3 and accepted["client_msg_id"] == cmid
        assert accepted["message_id"].isdigit()
        message = await recv_type(bob, "message")
        assert message["seq"] == 1 and message["body"] == "hi" and message["sender"] == "alice"
        assert message["message_id"] == accepted["message_id"]
        mine = await recv_type(alice, "message")  # the sender's devices get it too
        assert mine["seq"] == 1
        await bob.send(
            msgspec.msgpack.encode(
                {"type": "receipt", "chat": chat["chat"], "status": "read", "seq": 1}
            )
        )
        receipt = await recv_type(alice, "receipt")
        assert (receipt["user"], receipt["status"], receipt["seq"]) == ("bob", "read", 1)
        await alice.send(json.dumps(send))  # a retry: the same answer, stored once
        again = await recv_type(alice, "accepted")
        assert again["message_id"] == accepted["message_id"]
        await server.node.settled()  # the stores catch up with the log
        await alice.send('{"type":"chats","id":9}')
        (summary,) = (await recv_type(alice, "chats"))["chats"]
        assert (summary["last_seq"], summary["read_seq"]) == (1, 1)
        assert summary["unread"] == 0  # her own message
        assert summary["watermarks"] == [{"user": "bob", "delivered_seq": 1, "read_seq": 1}]


async def test_bad_frames_get_errors_and_the_connection_survives(server: RunningServer) -> None:
    async with raw(server) as ws:
        await hello(ws, server.token("alice"))
        await ws.send("{not json")
        assert (await recv(ws))["code"] == "bad_frame"
        await ws.send('{"type":"teleport","id":4}')
        error = await recv(ws)
        assert error["code"] == "bad_frame" and error["id"] == 4
        await ws.send('{"type":"send","id":5,"chat":"c"}')
        assert (await recv(ws))["code"] == "bad_frame"
        await ws.send("x" * (2 * 1024 * 1024))
        assert (await recv(ws))["code"] == "too_large"
        await ws.send('{"type":"ping","id":6}')
        assert await recv(ws) == {"type": "pong", "id": 6}


async def test_repeated_abuse_closes_with_1008(server: RunningServer) -> None:
    async with raw(server) as ws:
        await hello(ws, server.token("alice"))
        for _ in range(11):
            await ws.send("{not json")
        assert await closed_with(ws) == 1008


@pytest.mark.parametrize("case", ["wrong_key", "expired", "alg_none", "garbage"])
async def test_bad_tokens_close_with_4001(server: RunningServer, case: str) -> None:
    now = int(time.time())
    tokens = {
        "wrong_key": jwt.encode({"sub": "alice", "exp": now + 60}, "k" * 32, algorithm="HS256"),
        "expired": server.chat.authority.issue("alice", ttl_s=-60),
        "alg_none": jwt.encode({"sub": "alice", "exp": now + 60}, "", algorithm="none"),
        "garbage": "not-a-token",
    }
    async with raw(server) as ws:
        answer = await hello(ws, tokens[case])
        assert answer["type"] == "error" and answer["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_frames_before_hello_close_with_4001(server: RunningServer) -> None:
    async with raw(server) as ws:
        await ws.send('{"type":"ping","id":1}')
        assert (await recv(ws))["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_non_member_gets_not_member_and_nothing_reaches_the_log(
    server: RunningServer,
) -> None:
    node = server.node
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    before = await node.backends.log.end_offsets(node.topics.submitted)
    async with raw(server) as ws:
        await hello(ws, server.token("mallory"))
        requests = [
            {
                "type": "send",
                "id": 2,
                "chat": chat.chat_id,
                "client_msg_id": "x",
                "kind": "text",
                "body": "hi",
            },
            {"type": "history", "id": 3, "chat": chat.chat_id},
            {"type": "receipt", "id": 4, "chat": chat.chat_id, "status": "read", "seq": 1},
            {"type": "typing", "id": 5, "chat": chat.chat_id},
        ]
        for request in requests:
            await ws.send(json.dumps(request))
            error = await recv(ws)
            assert (error["type"], error["code"], error["id"]) == (
                "error",
                "not_member",
                request["id"],
            )
        await ws.send('{"type":"presence.subscribe","id":6,"users":["alice"]}')
        assert (await recv(ws))["code"] == "unauthorized"
        await ws.send('{"type":"ping","id":7}')
        assert (await recv(ws))["type"] == "pong"
    assert await node.backends.log.end_offsets(node.topics.submitted) == before
    assert sum((await node.backends.log.end_offsets(node.topics.receipts)).values()) == 0


async def test_hello_timeout_closes_with_4002(server: RunningServer) -> None:
    server.chat.host.limits = type(server.chat.host.limits)(hello_timeout_s=0.3)
    async with raw(server) as ws:
        assert await closed_with(ws) == 4002


async def test_slow_consumer_is_closed_with_4008(server: RunningServer) -> None:
    node = server.node
    node.hub._queue_size = 3
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    async with raw(server) as ws:
        await hello(ws, server.token("bob"))
        conn = next(iter(node.hub.connections))
        for i in range(50):  # the socket reader is not reading fast enough for a queue of 3
            node.hub.dispatch([conn.info.conn_id], _message_event(chat.chat_id, i + 1))
        await anyio.sleep(0)
        code = await closed_with(ws)
        assert code == 4008


async def test_an_idle_writer_stops_and_the_next_event_starts_it_again(
    server: RunningServer,
) -> None:
    node = server.node
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    async with raw(server) as ws:
        await hello(ws, server.token("bob"))
        (client,) = server.chat.connections
        conn = next(iter(node.hub.connections))

        def waiting() -> bool:
            return conn.waiting

        if server.native:  # no writer task at all: the hub's hook flushes each burst
            assert not waiting()
            client.retire_idle_writer(now=time.monotonic() + 3600)
            for seq in (1, 2):
                node.hub.dispatch([conn.info.conn_id], _message_event(chat.chat_id, seq))
            assert [(await recv_type(ws, "message"))["seq"] for _ in range(2)] == [1, 2]
            assert not waiting()
            return
        with anyio.fail_after(5):
            while not waiting():  # the writer started at hello and now waits
                await anyio.sleep(0.01)
        client.retire_idle_writer(now=time.monotonic())  # not idle long enough
        assert waiting()
        client.retire_idle_writer(now=time.monotonic() + 3600)
        with anyio.fail_after(5):
            while waiting():
                await anyio.sleep(0.01)
        await anyio.sleep(0.05)
        assert not waiting()  # it stopped rather than waiting again
        for seq in (1, 2):
            node.hub.dispatch([conn.info.conn_id], _message_event(chat.chat_id, seq))
        assert [(await recv_type(ws, "message"))["seq"] for _ in range(2)] == [1, 2]
        with anyio.fail_after(5):
            while not waiting():  # a new writer waits for the next burst
                await anyio.sleep(0.01)


async def test_a_client_that_leaves_while_its_writer_is_stopped_is_unregistered(
    server: RunningServer,
) -> None:
    node = server.node
    await node.create_chat("bob", kind="direct", members=["alice"])
    async with raw(server) as ws:
        await hello(ws, server.token("bob"))
        (client,) = server.chat.connections
        conn = next(iter(node.hub.connections))
        with anyio.fail_after(5):
            while not conn.waiting and not server.native:  # the fast path has no writer
                await anyio.sleep(0.01)
        client.retire_idle_writer(now=time.monotonic() + 3600)
        await anyio.sleep(0.05)
        await ws.close()
    with anyio.fail_after(5):
        while server.chat.connections or node.hub.connections:
            await anyio.sleep(0.01)
    (state,) = await node.presence("alice", ["bob"])
    assert not state.online  # unregistered: the close went all the way through


def _message_event(chat_id: str, seq: int) -> Any:
    from chatcore.events import MessageEvent
    from chatcore.model import StoredMessage

    return MessageEvent(StoredMessage(chat_id, seq, seq, "alice", f"c{seq}", "text", "x", 0))


async def test_shutdown_says_going_away(server: RunningServer) -> None:
    async with raw(server) as ws:
        await hello(ws, server.token("alice"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.chat.drain)
            assert await closed_with(ws) == 1001


async def test_http_endpoints(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        token = await http.post("/api/dev/token", json={"user": "zoe"})
        assert token.status_code == 200
        assert server.chat.authority.verify(token.json()["token"]) == "zoe"
        assert (await http.post("/api/dev/token", json={})).status_code == 400
        metrics = await http.get("/metrics")
        assert "chatcore_connections" in metrics.text
        assert "chatcore_delivery_latency_seconds" in metrics.text


async def test_origin_allowlist(tmp_path: Path) -> None:
    from tests.e2e.conftest import embedded_settings, running

    settings = embedded_settings(tmp_path)
    settings.allowed_origins = ["https://chat.example.com"]
    async with running(settings) as srv:
        async with connect(srv.ws_url, origin=Origin("https://chat.example.com")) as ws:
            assert (await hello(ws, srv.token("alice")))["type"] == "welcome"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(srv.ws_url, origin=Origin("https://evil.example.com")):
                pass
        assert refused.value.response.status_code == 403
