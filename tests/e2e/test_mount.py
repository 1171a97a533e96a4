"""The README's "mount in your FastAPI app" example really serves chat."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn
from websockets.asyncio.client import connect

pytestmark = pytest.mark.anyio


async def test_mounted_chat_server_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    from examples.mount_fastapi import app, chat

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(20):
            while not server.started:
                await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/hello")).json() == {"hello": "from your own app"}
            assert (await http.get("/chat/healthz")).json()["status"] == "ok"
        async with connect(f"ws://127.0.0.1:{port}/chat/ws") as ws:
            token = chat.authority.issue("alice")
            await ws.send(json.dumps({"type": "hello", "id": 1, "token": token, "device": "d"}))
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome" and welcome["user"] == "alice"
        server.should_exit = True
