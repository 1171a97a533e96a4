"""`chatcore serve --data DIR` as a user runs it: restarts keep chats, history and unread."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.client.harness import device

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(data: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != "CHATCORE_SECRET"}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatcore.cli", "serve", "--dev", "--data", str(data),
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


def dev_token(port: int, user: str) -> str:
    answer = httpx.post(f"http://127.0.0.1:{port}/api/dev/token", json={"user": user}, timeout=5)
    return str(answer.json()["token"])


async def test_restart_keeps_chats_history_and_unread(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    with serve(data, port, log) as first:
        async with httpx.AsyncClient() as http:
            page = await http.get(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status_code == 200 and "<html" in page.text.lower()
        async with device(url, dev_token(port, "alice")) as alice:
            chat = (await alice.client.create_group("trip", ["bob"])).chat
            for i in range(5):
                await alice.client.send(chat, f"m{i}")
            await alice.wait_for_seq(chat, 5)
            # SIGTERM: the server drains and says "going away" (1001) to its clients.
            first.send_signal(signal.SIGTERM)
            # uvicorn re-raises the signal once it has shut down gracefully
            assert first.wait(30) in (0, -signal.SIGTERM)
        assert "Traceback" not in log.read_text()

    with serve(data, port, log):
        async with device(url, dev_token(port, "bob")) as bob:
            (state,) = [c for c in await bob.client.chats() if c.chat == chat]
            assert (state.title, state.last_seq, state.unread, state.read_seq) == ("trip", 5, 5, 0)
            await bob.wait_for_seq(chat, 5)  # catch-up after connecting
            assert [m.body for m in bob.messages[chat]] == [f"m{i}" for i in range(5)]
            await bob.client.mark_read(chat, 3)

            with anyio.fail_after(10):
                while True:
                    (state,) = [c for c in await bob.client.chats() if c.chat == chat]
                    if state.read_seq == 3:
                        break
                    await anyio.sleep(0.05)
            assert state.unread == 2


async def test_going_away_is_1001(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect

    port = free_port()
    with serve(tmp_path / "d", port, tmp_path / "log") as process:
        token = dev_token(port, "alice")
        async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            await ws.send('{"type":"hello","id":1,"token":"' + token + '","device":"d"}')
            await ws.recv()
            process.send_signal(signal.SIGTERM)
            code = None
            with anyio.fail_after(20):
                try:
                    while True:
                        await ws.recv()
                except ConnectionClosed as closed:
                    code = closed.rcvd.code if closed.rcvd else None
            assert code == 1001
