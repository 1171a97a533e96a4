"""The fast path of ``/ws`` (``chatcore.server.native``) over real sockets: what only it
does (write batching, frame batches, the hand-over from uvicorn's HTTP). Every rule of
the wire protocol runs on both paths in test_server_protocol.py and the SDK tests."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from chatcore.events import MessageEvent
from chatcore.model import StoredMessage
from chatcore.server import native as native_module
from chatcore.server.native import BATCH_MAX_FRAMES, NativeConnection
from tests.e2e.conftest import RunningServer, embedded_settings, running
from tests.e2e.test_server_protocol import closed_with, hello, raw, recv

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["native", "asgi"])
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running(embedded_settings(tmp_path), native=request.param == "native") as srv:
        yield srv


@pytest.fixture
async def native(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running(embedded_settings(tmp_path)) as srv:
        yield srv


def _event(chat_id: str, seq: int) -> MessageEvent:
    return MessageEvent(StoredMessage(chat_id, seq, seq, "alice", f"c{seq}", "text", "x", 0))


async def _hello_batch(ws: ClientConnection, token: str, *, batch: bool = True) -> Any:
    frame = {"type": "hello", "id": 1, "token": token, "device": "d1", "batch": batch}
    binary = ws.subprotocol == "chatcore.v1.msgpack"
    await ws.send(msgspec.msgpack.encode(frame) if binary else json.dumps(frame))
    return await recv(ws)


async def _burst(server: RunningServer, user: str, count: int) -> None:
    """``count`` message events queued on ``user``'s connection at once."""
    node = server.node
    (conn,) = [c for c in node.hub.connections if c.user == user]
    for seq in range(1, count + 1):
        node.hub.dispatch([conn.info.conn_id], _event("c-test", seq))


def _decode(data: str | bytes) -> Any:
    return msgspec.msgpack.decode(data) if isinstance(data, bytes) else json.loads(data)


@pytest.mark.parametrize("subprotocol", ["chatcore.v1.json", "chatcore.v1.msgpack"])
async def test_a_client_that_asks_gets_a_burst_as_one_batch(
    native: RunningServer, subprotocol: str
) -> None:
    async with raw(native, subprotocol) as ws:
        welcome = await _hello_batch(ws, native.token("bob"))
        assert welcome["type"] == "welcome"  # alone, never in a batch
        await _burst(native, "bob", 5)
        with anyio.fail_after(5):
            batch = _decode(await ws.recv())
        assert isinstance(batch, list), batch
        assert [(f["type"], f.get("seq")) for f in batch] == [("message", s) for s in range(1, 6)]


async def test_a_batch_is_split_at_its_frame_limit(native: RunningServer) -> None:
    async with raw(native) as ws:
        await _hello_batch(ws, native.token("bob"))
        await _burst(native, "bob", BATCH_MAX_FRAMES + 3)
        seqs: list[int] = []
        with anyio.fail_after(5):
            while len(seqs) < BATCH_MAX_FRAMES + 3:
                got = _decode(await ws.recv())
                batch = got if isinstance(got, list) else [got]
                assert len(batch) <= BATCH_MAX_FRAMES
                seqs += [f["seq"] for f in batch]
        assert seqs == list(range(1, BATCH_MAX_FRAMES + 4))


async def test_without_asking_a_burst_is_one_frame_per_event_in_one_write(
    both: RunningServer,
) -> None:
    async with raw(both) as ws:
        await _hello_batch(ws, both.token("bob"), batch=False)
        (client,) = both.chat.connections
        before = client.writes if isinstance(client, NativeConnection) else 0
        await _burst(both, "bob", 5)
        frames = [await recv(ws) for _ in range(5)]
        assert [(f["type"], f["seq"]) for f in frames] == [("message", s) for s in range(1, 6)]
        if isinstance(client, NativeConnection):
            assert client.writes == before + 1  # five frames, one write


async def test_the_asgi_path_ignores_batch(tmp_path: Path) -> None:
    async with running(embedded_settings(tmp_path), native=False) as server, raw(server) as ws:
        await _hello_batch(ws, server.token("bob"))
        await _burst(server, "bob", 3)
        frames = [await recv(ws) for _ in range(3)]
        assert [f["seq"] for f in frames] == [1, 2, 3]


async def test_http_and_other_websocket_paths_stay_on_uvicorn(native: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=native.http_url) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.get("/")).status_code == 200
    other = native.ws_url.replace("/ws", "/elsewhere")
    with pytest.raises(InvalidStatus) as refused:  # the ASGI app has no such route
        async with connect(other):
            pass
    assert refused.value.response.status_code == 403


async def test_a_fragmented_hello_is_reassembled(native: RunningServer) -> None:
    async with raw(native) as ws:
        text = json.dumps({"type": "hello", "id": 1, "token": native.token("bob"), "device": "d"})
        await ws.send([text[:10], text[10:30], text[30:]])
        assert (await recv(ws))["type"] == "welcome"


async def test_a_message_over_the_size_limit_closes_with_1009(native: RunningServer) -> None:
    async with raw(native) as ws:
        await hello(ws, native.token("bob"))
        chunk = "x" * (1024 * 1024)
        await ws.send(iter([chunk] * 5))  # 5 MiB in fragments
        assert await closed_with(ws) == 1009


async def test_the_subprotocol_is_negotiated(native: RunningServer) -> None:
    offered = [Subprotocol("nope"), Subprotocol("chatcore.v1.msgpack")]
    async with connect(native.ws_url, subprotocols=offered) as ws:
        assert ws.subprotocol == "chatcore.v1.msgpack"
    async with connect(native.ws_url) as ws:
        assert ws.subprotocol is None  # JSON, the default


async def test_an_idle_connection_holds_no_task_and_no_eager_state(
    native: RunningServer,
) -> None:
    """What a connection keeps while idle is what ``kib_per_conn`` of the idle benchmark
    counts: after hello and a sync it has no task, no reader inbox, no fragment list, no
    slow-consumer state and no handshake headers, and every per-connection object is
    slotted (no ``__dict__``)."""
    async with raw(native) as ws:
        await hello(ws, native.token("bob"))
        await ws.send(json.dumps({"type": "sync", "id": 2}))
        assert (await recv(ws))["type"] == "synced"
        (client,) = native.chat.connections
        assert isinstance(client, NativeConnection)
        if tasks := client.gateway.tasks:  # the sync's reader task is ending
            await asyncio.wait(list(tasks))
        assert not client.gateway.tasks
        assert client._reader is None
        assert client._inbox is None and client._fragments is None
        assert client._backlog is None
        assert client.transport is not None
        assert not client.transport.request.headers
        assert not client.transport.response.headers
        assert client.conn is not None and client._handler is not None
        for obj in (client, client.session, client.conn, client._handler):
            assert not hasattr(obj, "__dict__"), type(obj).__name__


async def test_a_send_that_waited_in_the_inbox_past_the_lag_bound_is_refused(
    native: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames that arrive while a request is in flight wait in the connection's inbox,
    stamped with their arrival; a ``send`` taken from it later than the node's
    delivery-lag bound (250 ms) is answered ``overloaded`` and appends nothing."""
    clock = [1000.0]
    monkeypatch.setattr(native_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    node = native.node
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    release, held = anyio.Event(), anyio.Event()
    send = node.send

    async def slow_first_send(*args: Any, **kwargs: Any) -> Any:
        if not held.is_set():
            held.set()
            await release.wait()
        return await send(*args, **kwargs)

    monkeypatch.setattr(node, "send", slow_first_send)

    def request(i: int) -> str:
        frame = {"type": "send", "id": i, "chat": chat.chat_id, "client_msg_id": f"m{i}",
                 "kind": "text", "body": f"b{i}"}  # fmt: skip
        return json.dumps(frame)

    async with raw(native) as ws:
        await hello(ws, native.token("alice"))
        await ws.send(request(2))
        with anyio.fail_after(5):
            await held.wait()  # send 2 is in flight: what follows waits in the inbox
        await ws.send(request(3))
        await ws.send(request(4))
        with anyio.fail_after(5):  # the pong: the server has read the frames before it
            await (await ws.ping())
        clock[0] += 0.3  # they waited 300 ms
        release.set()
        answers = [await recv(ws) for _ in range(3)]
    assert [(a["type"], a["id"]) for a in answers] == [
        ("accepted", 2), ("error", 3), ("error", 4)
    ]  # fmt: skip
    assert {a.get("code") for a in answers[1:]} == {"overloaded"}
    assert answers[1]["retry_after_ms"] == 250
    await node.settled()
    stored = await node.history("alice", chat.chat_id, after=0, limit=10)
    assert [m.client_msg_id for m in stored.messages] == ["m2"], stored
