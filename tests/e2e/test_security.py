"""The reference server under hostile clients, over real sockets (issue 11's probe).

Raw TCP where the finding is about the transport (clients that stop reading, half
sent requests, invalid UTF-8), real WebSocket and HTTP clients elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import os
import random
import socket
import stat
import struct
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketStream
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from chatcore.gateway.session import SessionLimits
from chatcore.server import ServerSettings
from chatcore.server.host import ConnectionHost
from tests.e2e.conftest import RunningServer, embedded_settings, running
from tests.e2e.test_server_protocol import closed_with, hello, raw, recv, recv_type

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["native", "asgi"])
def ws_path(request: pytest.FixtureRequest) -> str:
    """Which path serves ``/ws``: the fast path or the ASGI app (both keep every rule)."""
    return str(request.param)


def settings(tmp_path: Path, **fields: Any) -> ServerSettings:
    s = embedded_settings(tmp_path)
    s.limits = SessionLimits(frames_per_s=10_000, frame_burst=10_000)
    for name, value in fields.items():
        setattr(s, name, value)
    return s


# --- a WebSocket client on a bare TCP socket -------------------------------------------


class RawWebSocket:
    """Just enough of RFC 6455 to say hello and then misbehave."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    @asynccontextmanager
    async def open(
        cls, server: RunningServer, *, rcvbuf: int | None = None
    ) -> AsyncIterator[RawWebSocket]:
        port = int(server.http_url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            if rcvbuf is not None:
                sock = stream.extra(SocketAttribute.raw_socket)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            key = base64.b64encode(os.urandom(16)).decode()
            await stream.send(
                (
                    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chatcore.v1.json\r\n\r\n"
                ).encode()
            )
            ws = cls(stream)
            head = await ws._read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            yield ws

    async def _read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self.buffer += await self.stream.receive()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    async def _read_exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += await self.stream.receive()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    async def send_frame(self, payload: bytes, opcode: int = 0x1) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        await self.stream.send(header + mask + masked)

    async def recv_frame(self) -> tuple[int, bytes]:
        first, second = await self._read_exactly(2)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._read_exactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._read_exactly(8))
        return first & 0x0F, await self._read_exactly(n)

    async def recv_json(self) -> dict[str, Any]:
        opcode, payload = await self.recv_frame()
        assert opcode == 0x1, (opcode, payload)
        return dict(json.loads(payload))

    async def hello(self, token: str) -> None:
        await self.send_frame(
            json.dumps({"type": "hello", "id": 1, "token": token, "device": "b"}).encode()
        )
        assert (await self.recv_json())["type"] == "welcome"

    async def close_code(self) -> int:
        """Read frames until the server's close frame; its code."""
        while True:
            opcode, payload = await self.recv_frame()
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])


async def drained_to_the_end(stream: SocketStream) -> None:
    """Read until the server closes or resets the connection."""
    try:
        while True:
            await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError, OSError):
        return


# --- finding 1: the hello deadline ------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"use_uvloop": True})])
async def test_every_connection_without_hello_is_closed_at_the_deadline(
    ws_path: str, tmp_path: Path
) -> None:
    """On uvloop (what ``chatcore serve`` runs on) a timer may fire up to a millisecond
    early (libuv counts from the loop's cached time, in milliseconds); about one
    connection in ten then stayed open for good before the deadline was re-armed."""
    limits = SessionLimits(hello_timeout_s=0.3)
    async with running(settings(tmp_path, limits=limits), native=ws_path == "native") as server:
        codes: list[int | None] = []

        async def silent() -> None:
            async with raw(server) as ws:
                codes.append(await closed_with(ws))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(60):
                    tg.start_soon(silent)
        assert codes == [4002] * 60


# --- finding 2: a client that stops reading -------------------------------------------


async def send_until_gone(
    host: ConnectionHost,
    user: str,
    sender: ClientConnection,
    chat_id: str,
    *,
    reader: ClientConnection | None = None,
) -> int:
    """Send 16 KB messages until ``user`` (who reads nothing) has no connection left;
    how many were sent. ``reader`` must get each one in turn."""
    sent = 0
    with anyio.fail_after(60):
        while host.connections_of(user):
            sent += 1
            await send_text(sender, sent, chat_id, "x" * 16_000)
            await recv_type(sender, "accepted")
            if reader is not None:
                assert (await recv_type(reader, "message"))["seq"] == sent
    return sent


async def send_text(ws: ClientConnection, request_id: int, chat_id: str, body: str) -> None:
    await ws.send(
        json.dumps(
            {
                "type": "send",
                "id": request_id,
                "chat": chat_id,
                "client_msg_id": str(uuid.uuid4()),
                "kind": "text",
                "body": body,
            }
        )
    )


async def test_a_client_that_stops_reading_is_dropped_and_freed(
    ws_path: str, tmp_path: Path
) -> None:
    async with running(
        settings(tmp_path, send_timeout_s=0.5, close_grace_s=2.0), native=ws_path == "native"
    ) as server:
        chat = await server.node.create_chat("alice", kind="direct", members=["bob"])
        async with raw(server) as alice, RawWebSocket.open(server, rcvbuf=4096) as bob:
            await hello(alice, server.token("alice"))
            await bob.hello(server.token("bob"))
            host = server.chat.host
            assert host.connections_of("bob") == 1
            await send_until_gone(host, "bob", alice, chat.chat_id)
            with anyio.fail_after(10):  # bob's socket is closed, not left ESTABLISHED
                await drained_to_the_end(bob.stream)
            assert len(server.chat.connections) == 1  # alice's
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                assert (await http.get("/healthz")).json()["connections"] == 1
            closes = server.chat.metrics.closes.labels("4008")._value.get()
            assert closes == 1
            await alice.send('{"type":"ping","id":99}')  # the sender is unaffected
            assert (await recv_type(alice, "pong"))["id"] == 99


async def test_a_reader_with_too_much_unread_is_closed_with_4008_and_freed(
    ws_path: str, tmp_path: Path
) -> None:
    """The unread-bytes rule: a group member that stops reading is closed with 4008
    once more than ``max_unread_bytes`` have waited for it for ``unread_timeout_s``,
    long before the send timeout (set far out of reach here), and its close frame
    follows what it did not read; the other members keep receiving every message."""
    limits = SessionLimits(
        frames_per_s=10_000, frame_burst=10_000, max_unread_bytes=64 * 1024, unread_timeout_s=0.5
    )
    s = settings(tmp_path, send_timeout_s=300.0, send_rate_per_s=1000.0, send_burst=1000.0)
    s.limits = limits
    async with running(s, native=ws_path == "native") as server:
        chat = await server.node.create_chat("alice", kind="group", members=["bob", "carol"])
        async with (
            raw(server) as alice,
            raw(server) as carol,
            RawWebSocket.open(server) as bob,
        ):
            await hello(alice, server.token("alice"))
            await hello(carol, server.token("carol"))
            await bob.hello(server.token("bob"))
            host, metrics = server.chat.host, server.chat.metrics
            sent = await send_until_gone(host, "bob", alice, chat.chat_id, reader=carol)
            assert metrics.closes.labels("4008")._value.get() == 1
            # At most what the kernel buffers hold got queued: the rule fired early.
            assert sent * 16_000 < 4 * 1024 * 1024
            assert len(server.chat.connections) == 2  # alice's and carol's
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                assert (await http.get("/healthz")).json()["connections"] == 2
            with anyio.fail_after(10):  # reading again, bob finds the close frame
                assert await bob.close_code() == 4008
                await drained_to_the_end(bob.stream)
            for more in range(sent + 1, sent + 4):  # carol is unaffected
                await send_text(alice, more, chat.chat_id, "after")
                assert (await recv_type(carol, "message"))["seq"] == more


def test_server_pings_time_out_after_a_slow_reader_is_dropped() -> None:
    s = ServerSettings()
    assert s.ws_ping_timeout_s is not None and s.ws_ping_timeout_s > s.send_timeout_s


# --- finding 3: slowloris ----------------------------------------------------------------


async def test_half_sent_requests_are_closed_at_the_header_timeout(tmp_path: Path) -> None:
    async with running(settings(tmp_path, header_timeout_s=0.5)) as server:
        port = int(server.http_url.rsplit(":", 1)[1])
        silent = await anyio.connect_tcp("127.0.0.1", port)
        partial = await anyio.connect_tcp("127.0.0.1", port)
        await partial.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        async with silent, partial:
            with anyio.fail_after(1):  # a normal client is served meanwhile
                async with httpx.AsyncClient(base_url=server.http_url) as http:
                    assert (await http.get("/healthz")).status_code == 200
                async with raw(server) as ws:
                    assert (await hello(ws, server.token("alice")))["type"] == "welcome"
            with anyio.fail_after(5):
                await drained_to_the_end(silent)
                await drained_to_the_end(partial)
            assert time.monotonic() - started >= 0.4


async def test_a_kept_alive_connection_gets_the_header_deadline_again(tmp_path: Path) -> None:
    async with running(settings(tmp_path, header_timeout_s=0.5)) as server:
        port = int(server.http_url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as conn:
            await conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            with anyio.fail_after(5):
                first = await conn.receive()
            assert first.startswith(b"HTTP/1.1 200")
            await conn.send(b"GET /healthz HTTP/1.1\r\nHo")  # then nothing
            with anyio.fail_after(5):
                await drained_to_the_end(conn)


# --- finding 4: connections per user -----------------------------------------------------


async def test_a_user_may_hold_a_limited_number_of_connections(
    ws_path: str, tmp_path: Path
) -> None:
    async with running(
        settings(tmp_path, max_connections_per_user=3), native=ws_path == "native"
    ) as server:
        token = server.token("alice")
        async with raw(server) as a, raw(server) as b, raw(server) as c:
            for ws in (a, b, c):
                assert (await hello(ws, token))["type"] == "welcome"
            async with raw(server) as d:
                refused = await hello(d, token)
                assert refused["type"] == "error" and refused["code"] == "rate_limited"
                assert refused["id"] == 1 and "too many connections" in refused["message"]
                assert await closed_with(d) == 1008
            async with raw(server) as other:  # another user is not affected
                assert (await hello(other, server.token("bob")))["type"] == "welcome"
            await c.close()
            with anyio.fail_after(5):
                while server.chat.host.connections_of("alice") > 2:
                    await anyio.sleep(0.01)
            async with raw(server) as e:
                assert (await hello(e, token))["type"] == "welcome"


# --- finding 5: data files ---------------------------------------------------------------


async def test_data_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running(settings(tmp_path)) as server:
        await server.node.create_chat("alice", kind="direct", members=["bob"])
        await server.node.settled()
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        files = [p for p in data.rglob("*") if p.is_file()]
        assert any(p.name.endswith("-wal") for p in files)
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for folder in (p for p in data.rglob("*") if p.is_dir()):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


# --- finding 6: the dev login ------------------------------------------------------------


async def test_the_dev_login_answers_only_on_loopback_names(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as server:
        port = server.http_url.rsplit(":", 1)[1]
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]", "LOCALHOST"):
                answer = await http.post(
                    "/api/dev/token", json={"user": "zoe"}, headers={"host": host}
                )
                assert answer.status_code == 200, host
            for host in (
                "evil.example.com",
                f"evil.example.com:{port}",
                "127.0.0.1.evil.com",
                "localhost.evil.com:80",
            ):
                answer = await http.post(
                    "/api/dev/token", json={"user": "zoe"}, headers={"host": host}
                )
                assert answer.status_code == 403, host
                assert "token" not in answer.json()


@pytest.mark.parametrize(
    "body",
    [
        {"user": None},
        {"user": 5},
        {"user": ["alice"]},
        {"user": {"name": "alice"}},
        {"user": ""},
        {"user": "   "},
        {"user": "x" * 65},
        {"user": "alice smith"},
        {"user": "alice\nbob"},
        {"user": "../admin"},
        {},
        ["alice"],
        "alice",
    ],
)
async def test_the_dev_login_takes_only_a_plain_user_name(tmp_path: Path, body: Any) -> None:
    async with (
        running(settings(tmp_path)) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        answer = await http.post("/api/dev/token", json=body)
        assert answer.status_code == 400
        assert "letters, digits" in answer.json()["error"]
        ok = await http.post("/api/dev/token", json={"user": " zoe.o-k_1@x "})
        assert ok.status_code == 200 and ok.json()["user"] == "zoe.o-k_1@x"


# --- finding 7: origins, headers, logs, UTF-8, expiry, revocation -------------------------


async def test_default_origin_policy_is_same_origin(ws_path: str, tmp_path: Path) -> None:
    async with running(settings(tmp_path), native=ws_path == "native") as server:
        port = server.http_url.rsplit(":", 1)[1]
        own = Origin(f"http://127.0.0.1:{port}")
        async with connect(server.ws_url, origin=own) as ws:
            assert (await hello(ws, server.token("alice")))["type"] == "welcome"
        async with connect(server.ws_url) as ws:  # no Origin: not a browser
            assert (await hello(ws, server.token("alice")))["type"] == "welcome"
        for origin in (
            "https://evil.example.com",
            f"http://127.0.0.1:{int(port) + 1}",
            "null",
            f"https://127.0.0.1:{port}.evil.com",
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(server.ws_url, origin=Origin(origin)):
                    pass
            assert refused.value.response.status_code == 403, origin


async def test_allowed_origins_match_exactly(ws_path: str, tmp_path: Path) -> None:
    s = settings(tmp_path, allowed_origins=["https://app.example.com"])
    async with running(s, native=ws_path == "native") as server:
        async with connect(server.ws_url, origin=Origin("https://app.example.com")) as ws:
            assert (await hello(ws, server.token("alice")))["type"] == "welcome"
        for origin in (
            "https://app.example.com.evil.com",
            "https://evil.app.example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
        ):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(server.ws_url, origin=Origin(origin)):
                    pass
            assert refused.value.response.status_code == 403, origin


async def test_pages_carry_security_headers(tmp_path: Path) -> None:
    async with (
        running(settings(tmp_path)) as server,
        httpx.AsyncClient(base_url=server.http_url) as http,
    ):
        for path in ("/", "/static/app.js", "/healthz", "/nowhere"):
            headers = (await http.get(path)).headers
            csp = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "no-referrer"
            assert headers["x-frame-options"] == "DENY"


@contextmanager
def captured(*names: str) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            record.message = record.getMessage()  # after the logger's filters ran
            records.append(record)

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)


async def test_tokens_in_urls_are_not_logged(ws_path: str, tmp_path: Path) -> None:
    secret = "eyJzecret.tok3n.value"
    async with running(settings(tmp_path), native=ws_path == "native") as server:
        with captured("uvicorn.access", "uvicorn.error") as records:
            async with connect(f"{server.ws_url}?token={secret}&x=1") as ws:
                assert (await hello(ws, server.token("alice")))["type"] == "welcome"
            async with httpx.AsyncClient(base_url=server.http_url) as http:
                await http.get(f"/healthz?access_token={secret}&page=2")
                await http.get(f"/healthz?Authorization={secret}")
        text = "\n".join(r.message for r in records)
        assert "/ws?token=***&x=1" in text and "/healthz?access_token=***&page=2" in text
        assert secret not in text


async def test_invalid_utf8_is_a_clean_1007_without_a_traceback(
    ws_path: str, tmp_path: Path
) -> None:
    async with running(settings(tmp_path), native=ws_path == "native") as server:
        with captured("uvicorn.error", "chatcore") as records:
            async with RawWebSocket.open(server) as ws:
                await ws.send_frame(b'{"type":"ping","id":1,"x":"\xff\xfe"}')
                with anyio.fail_after(5):
                    assert await ws.close_code() == 1007
            async with raw(server) as ws:  # the server is fine
                assert (await hello(ws, server.token("alice")))["type"] == "welcome"
        assert not [r for r in records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_session_is_closed_when_its_token_expires(ws_path: str, tmp_path: Path) -> None:
    async with running(
        settings(tmp_path, send_timeout_s=0.5), native=ws_path == "native"
    ) as server:
        authority = server.chat.authority
        # exp is 3.5-4.5 s ago, within the 5 s leeway: valid for about a second more
        token = authority.issue("alice", ttl_s=1, now=time.time() - 4.5)
        long_lived = server.token("bob")
        async with raw(server) as short, raw(server) as long:
            assert (await hello(short, token))["type"] == "welcome"
            assert (await hello(long, long_lived))["type"] == "welcome"
            started = time.monotonic()
            assert await closed_with(short) == 4001
            assert time.monotonic() - started < 5
            await long.send('{"type":"ping","id":2}')
            assert (await recv(long))["type"] == "pong"


async def test_revoking_a_user_closes_its_sockets_and_refuses_its_tokens(
    ws_path: str, tmp_path: Path
) -> None:
    async with running(settings(tmp_path), native=ws_path == "native") as server:
        old = server.token("bob")
        async with raw(server) as phone, raw(server) as laptop, raw(server) as alice:
            for ws, token in ((phone, old), (laptop, old), (alice, server.token("alice"))):
                assert (await hello(ws, token))["type"] == "welcome"
            assert server.chat.revoke_user("bob") == 2
            assert await closed_with(phone) == 4001
            assert await closed_with(laptop) == 4001
            await alice.send('{"type":"ping","id":2}')
            assert (await recv(alice))["type"] == "pong"
        async with raw(server) as again:
            refused = await hello(again, old)
            assert refused["code"] == "unauthorized" and "revoked" in refused["message"]
        later = server.chat.authority.issue("bob", now=time.time() + 1)  # issued after
        async with raw(server) as fresh:
            assert (await hello(fresh, later))["type"] == "welcome"


# --- OWASP: a non-member guessing chat ids -----------------------------------------------


def _requests_on(chat: str) -> list[dict[str, Any]]:
    """Every client frame type that names a chat, aimed at ``chat``."""
    return [
        {
            "type": "send",
            "id": 2,
            "chat": chat,
            "client_msg_id": "guess",
            "kind": "text",
            "body": "hi",
        },
        {"type": "history", "id": 3, "chat": chat},
        {"type": "history", "id": 4, "chat": chat, "after": 0, "limit": 50},
        {"type": "receipt", "id": 5, "chat": chat, "status": "read", "seq": 1},
        {"type": "receipt", "id": 6, "chat": chat, "status": "delivered", "seq": 1},
        {"type": "typing", "id": 7, "chat": chat},
        {"type": "chat.members", "id": 8, "chat": chat, "add": ["mallory"], "remove": []},
        {"type": "chat.members", "id": 9, "chat": chat, "add": [], "remove": ["bob"]},
    ]


async def _answers(ws: Any, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    answers = []
    for request in requests:
        await ws.send(json.dumps(request))
        answers.append(await recv(ws))
    return answers


async def test_a_non_member_changes_nothing_and_learns_nothing(tmp_path: Path) -> None:
    async with running(settings(tmp_path)) as server:
        node = server.node
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="secret")
        await node.send("alice", chat.chat_id, client_msg_id="m1", body="the plan")
        await node.settled()
        log_before = await node.backends.log.end_offsets(node.topics.submitted)
        receipts_before = await node.backends.log.end_offsets(node.topics.receipts)
        guessed = "0" * len(chat.chat_id)  # a chat id that does not exist
        async with raw(server) as alice, raw(server) as ws:
            await hello(alice, server.token("alice"))
            await hello(ws, server.token("mallory"))
            real = await _answers(ws, _requests_on(chat.chat_id))
            fake = await _answers(ws, _requests_on(guessed))
            # the same answers but for the id asked about: existence does not leak
            assert json.dumps(real).replace(chat.chat_id, "?") == json.dumps(fake).replace(
                guessed, "?"
            )
            for answer in real:
                assert answer["type"] == "error" and answer["code"] == "not_member", answer
                assert "secret" not in json.dumps(answer) and "bob" not in json.dumps(answer)
            await ws.send(json.dumps({"type": "sync", "id": 20, "cursors": {chat.chat_id: 0}}))
            synced = await recv_type(ws, "synced")
            assert chat.chat_id not in json.dumps(synced)
            await ws.send('{"type":"chats","id":21}')
            assert (await recv_type(ws, "chats"))["chats"] == []
            await ws.send('{"type":"presence.subscribe","id":22,"users":["alice","bob"]}')
            assert (await recv(ws))["code"] == "unauthorized"
            await ws.send('{"type":"ping","id":23}')
            assert (await recv(ws))["type"] == "pong"  # nothing else was pushed to mallory
            await alice.send('{"type":"ping","id":24}')
            assert (await recv(alice))["type"] == "pong"  # nor to a member
        await node.settled()
        assert await node.backends.log.end_offsets(node.topics.submitted) == log_before
        assert await node.backends.log.end_offsets(node.topics.receipts) == receipts_before
        stored = await node.backends.membership.get_chat(chat.chat_id)
        assert stored is not None and sorted(stored.members) == ["alice", "bob"]
        assert await node.backends.membership.get_chat(guessed) is None


# --- OWASP: static files -----------------------------------------------------------------

TRAVERSALS = [
    "/static/../app.py",
    "/static/..%2fapp.py",
    "/static/..%2Fapp.py",
    "/static/%2e%2e/app.py",
    "/static/%2e%2e%2fapp.py",
    "/static/%252e%252e%252fapp.py",
    "/static/..%252fapp.py",
    "/static/..\\app.py",
    "/static/..%5capp.py",
    "/static/..%5Capp.py",
    "/static/%2e%2e%5capp.py",
    "/static/%c0%ae%c0%ae/app.py",
    "/static/%c0%ae%c0%ae%c0%afapp.py",
    "/static/....//app.py",
    "/static/.%2e/app.py",
    "/static/%2e./%2e./%2e./%2e./%2e./%2e./%2e./%2e./etc/passwd",
    "/static/../../../../../../../../etc/passwd",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/..;/app.py",
    "/static/app.js%00../../app.py",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_static_files_refuse_path_traversal(tmp_path: Path, path: str) -> None:
    async with running(settings(tmp_path)) as server:
        port = int(server.http_url.rsplit(":", 1)[1])
        async with await anyio.connect_tcp("127.0.0.1", port) as conn:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            await conn.send(request.encode())
            answer = b""
            with anyio.fail_after(5):
                with contextlib.suppress(anyio.EndOfStream):
                    while True:
                        answer += await conn.receive()
        status = answer.split(b" ", 2)[1]
        assert status in (b"400", b"404", b"405"), (path, answer[:200])
        assert b"class ChatServer" not in answer and b"root:" not in answer


# --- fuzzing the whole request path over the wire -----------------------------------------


def _mutations(seed: int, count: int, chat: str) -> Iterator[str]:
    """The protocol's client examples aimed at a real chat, with one field replaced by
    a value of another type (deterministic)."""
    from tests.protocol.protocol_examples import CLIENT_EXAMPLES

    rng = random.Random(seed)
    odd: list[Any] = [None, True, -1, 0, 2**63, 2**64, 1.5, "", "x" * 300, [], {}, [chat], {"a": 1}]
    keys = ["id", "chat", "seq", "members", "add", "remove", "kind", "cursors", "users", "limit"]
    keys += ["before", "after", "status", "body", "attachment", "title", "client_msg_id"]
    for _ in range(count):
        frame = json.loads(rng.choice(CLIENT_EXAMPLES).replace("c-team", chat))
        if frame["type"] == "hello":
            continue
        if rng.random() < 0.8:
            frame[rng.choice(keys)] = rng.choice(odd)
        yield json.dumps(frame)


async def test_fuzzed_requests_get_clean_answers_and_the_connection_survives(
    ws_path: str,
    tmp_path: Path,
) -> None:
    limits = SessionLimits(frames_per_s=10_000, frame_burst=10_000, max_bad_frames=10_000)
    async with running(settings(tmp_path, limits=limits), native=ws_path == "native") as server:
        chat = await server.node.create_chat("alice", kind="group", members=["bob"], title="t")
        with captured("chatcore") as records:
            async with raw(server) as ws:
                await hello(ws, server.token("alice"))
                for n, frame in enumerate(_mutations(11, 300, chat.chat_id)):
                    await ws.send(frame)
                    await ws.send(json.dumps({"type": "ping", "id": 1_000_000 + n}))
                    with anyio.fail_after(10):
                        while (answer := await recv(ws)).get("id") != 1_000_000 + n:
                            assert answer.get("code") != "internal", (frame, answer)
                    assert answer["type"] == "pong"
        assert not [r for r in records if r.levelno >= logging.ERROR], records


async def test_a_user_may_open_connections_only_so_fast(ws_path: str, tmp_path: Path) -> None:
    s = settings(tmp_path, connect_rate_per_s=0.01, connect_burst=3)
    async with running(s, native=ws_path == "native") as server:
        for _ in range(3):
            async with raw(server) as ws:
                assert (await hello(ws, server.token("alice")))["type"] == "welcome"
        async with raw(server) as ws:
            refused = await hello(ws, server.token("alice"))
            assert refused["code"] == "rate_limited" and refused["retry_after_ms"] > 0
            assert await closed_with(ws) == 1008
        async with raw(server) as ws:  # per user
            assert (await hello(ws, server.token("bob")))["type"] == "welcome"


# --- the soak: a closed connection is freed without the cyclic collector -----------------


async def test_a_closed_connection_leaves_no_reference_cycles(ws_path: str, tmp_path: Path) -> None:
    """``chatcore serve`` runs the cyclic collector rarely (``chatcore._gc``): a
    connection that ended in reference cycles stayed in memory until a full
    collection, and RSS climbed in the soak. With the collector off, opening and
    closing connections must leave none of the server's per-connection objects in
    cycles (the stdlib's own transport cycle under plain asyncio is not ours)."""
    ours = (
        "ClientConnection",
        "NativeConnection",
        "LocalConnection",
        "GatewaySession",
        "AbortableWebSocket",
    )
    async with running(settings(tmp_path), native=ws_path == "native") as server:
        chat = await server.node.create_chat("alice", kind="direct", members=["bob"])
        async with raw(server) as alice:
            await hello(alice, server.token("alice"))
            gc.collect()
            gc.disable()
            try:
                for i in range(10):
                    async with raw(server) as bob:
                        await hello(bob, server.token("bob"), device=f"d{i}")
                        await send_text(alice, i + 1, chat.chat_id, "hi")
                        await recv_type(bob, "message")  # bob's writer ran
                with anyio.fail_after(10):
                    while server.chat.host.connections_of("bob"):
                        await anyio.sleep(0.01)
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
                kinds = Counter(type(o).__name__ for o in gc.garbage)
            finally:
                gc.set_debug(0)
                gc.garbage.clear()
                gc.enable()
        left = {k: kinds[k] for k in kinds if k in ours or "HTTP" in k or "Http" in k}
        assert left == {}, kinds.most_common(20)


async def test_a_client_that_stops_answering_pings_is_closed_with_1011(
    ws_path: str, tmp_path: Path
) -> None:
    s = settings(tmp_path, send_timeout_s=0.5, ws_ping_interval_s=0.3, ws_ping_timeout_s=0.6)
    async with running(s, native=ws_path == "native") as server, RawWebSocket.open(server) as ws:
        hello = {"type": "hello", "id": 1, "token": server.token("bob"), "device": "b"}
        await ws.send_frame(json.dumps(hello).encode())
        assert (await ws.recv_json())["type"] == "welcome"
        with anyio.fail_after(10):
            for _ in range(3):  # answered pings keep it open
                opcode, payload = await ws.recv_frame()
                assert opcode == 0x9, (opcode, payload)
                await ws.send_frame(payload, opcode=0xA)
            assert await ws.close_code() == 1011  # then silence closes it
