"""A real reference server on a loopback port, for end-to-end tests over WebSockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from chatcore.backends import production_backends
from chatcore.config import ProductionConfig
from chatcore.node import ChatNode, NodeOptions
from chatcore.server import ChatServer, ServerSettings
from chatcore.server.run import DrainingServer, build_server
from tests.client.harness import device, wait_until
from tests.services import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_ENDPOINT,
    S3_SECRET_KEY,
    require,
    unique,
)


@dataclass
class RunningServer:
    """A server running in the test's event loop."""

    uvicorn: DrainingServer
    chat: ChatServer
    http_url: str
    ws_url: str
    native: bool = True
    """``/ws`` is served on the fast path (``chatcore.server.native``), not by ASGI."""

    @property
    def node(self) -> ChatNode:
        return self.chat.node

    def token(self, user: str, *, ttl_s: int = 3600) -> str:
        return self.chat.authority.issue(user, ttl_s=ttl_s)

    async def kill_connections(self) -> None:
        """Drop every client connection from the server side (code 1012, no goodbye)."""
        for conn in list(self.chat.connections):
            await conn._close(1012, "killed by test")


@asynccontextmanager
async def running(settings: ServerSettings, *, native: bool = True) -> AsyncIterator[RunningServer]:
    """Serve ``settings`` on a free loopback port for the duration of the block;
    ``native``: ``/ws`` on the fast path (the default of ``chatcore serve``), else
    through the ASGI app."""
    uv = build_server(settings, host="127.0.0.1", port=0, log_level="warning", native=native)
    async with anyio.create_task_group() as tg:
        tg.start_soon(uv.serve)
        with anyio.fail_after(60):
            while not uv.started:
                await anyio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        http, ws = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws"
        yield RunningServer(uv, uv.chat, http, ws, native=native)
        uv.should_exit = True


def embedded_settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(
        data_dir=tmp_path / "data",
        dev=True,
        node=NodeOptions(partitions=4),
        send_rate_per_s=1000,
        send_burst=1000,
    )


@asynccontextmanager
async def production_settings() -> AsyncIterator[ServerSettings]:
    """Settings on the real Kafka, Cassandra, Redis and S3, in a namespace of their own."""
    for service in ("kafka", "cassandra", "redis", "s3proxy"):
        require(service)
    config = ProductionConfig.load(
        env={
            "CHATCORE_TOPIC_PREFIX": unique("e2e") + ".",
            "CHATCORE_REDIS_PREFIX": unique("e2e") + ":",
            "CHATCORE_CASSANDRA_KEYSPACE": unique("e2e_"),
            "CHATCORE_PARTITIONS": "2",
            "CHATCORE_S3_BUCKET": S3_BUCKET,
            "CHATCORE_S3_ENDPOINT": S3_ENDPOINT,
            "CHATCORE_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "CHATCORE_S3_SECRET_KEY": S3_SECRET_KEY,
            "CHATCORE_S3_PREFIX": unique("e2e-media") + "/",
            "CHATCORE_S3_CREATE_BUCKET": "true",
        }
    )
    yield ServerSettings(
        data_dir=None,
        dev=True,
        node=NodeOptions.from_config(config),
        backends=lambda: production_backends(config),
        send_rate_per_s=1000,
        send_burst=1000,
    )
    await anyio.to_thread.run_sync(_drop_keyspace, config.cassandra_keyspace)


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(["127.0.0.1"])
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


@pytest.fixture(
    params=["embedded", "embedded-asgi", pytest.param("production", marks=pytest.mark.services)]
)
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The reference server on the embedded backends with ``/ws`` on both paths (the
    fast path, ``-asgi``: through the ASGI app), and on Kafka + Cassandra + Redis
    (through the ASGI app, as before the fast path)."""
    if request.param != "production":
        settings = embedded_settings(tmp_path)
        async with running(settings, native=request.param == "embedded") as srv:
            yield srv
        return
    async with production_settings() as settings, running(settings, native=False) as srv:
        yield srv


async def traffic(server: RunningServer) -> None:
    """Messages, a receipt, an error and a server-side close: every series gets a value."""
    alice_device = device(server.ws_url, server.token("alice"))
    async with alice_device as alice, device(server.ws_url, server.token("bob"), "b1") as bob:
        chat = (await alice.client.create_direct("bob")).chat
        await alice.client.send(chat, "hello")
        await wait_until(lambda: bool(bob.messages[chat]), what="bob gets the message")
        await bob.client.mark_read(chat, 1)
        with pytest.raises(Exception, match="chat"):
            await alice.client.send("no-such-chat", "lost")
        await server.node.settled()
        await server.kill_connections()
