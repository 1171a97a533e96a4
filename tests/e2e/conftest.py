"""A real reference server on a loopback port, for end-to-end tests over WebSockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest

from chatcore.node import ChatNode, NodeOptions
from chatcore.server import ChatServer, ServerSettings
from chatcore.server.run import DrainingServer, build_server


@dataclass
class RunningServer:
    """A server running in the test's event loop."""

    uvicorn: DrainingServer
    chat: ChatServer
    http_url: str
    ws_url: str

    @property
    def node(self) -> ChatNode:
        return self.chat.node

    def token(self, user: str, *, ttl_s: int = 3600) -> str:
        return self.chat.authority.issue(user, ttl_s=ttl_s)

    async def kill_connections(self) -> None:
        """Drop every client connection from the server side (code 1012, no goodbye)."""
        for conn in list(self.chat.connections):
            await conn._close(1012, "killed by test")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    settings = ServerSettings(
        data_dir=tmp_path / "data",
        dev=True,
        node=NodeOptions(partitions=4),
        send_rate_per_s=1000,
        send_burst=1000,
    )
    uv = build_server(settings, host="127.0.0.1", port=0, log_level="warning")
    async with anyio.create_task_group() as tg:
        tg.start_soon(uv.serve)
        with anyio.fail_after(20):
            while not uv.started:
                await anyio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(uv, uv.chat, f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws")
        uv.should_exit = True
