"""The servers under test, each run as ``python -m benchmarks.targets KIND``.

A target prints ``READY <port>`` on stdout once it listens and runs until SIGINT or
SIGTERM. Kinds: ``chatcore-memory`` and ``chatcore-sqlite`` (``chatcore serve`` with
``--memory`` or a data folder: ``/ws`` on the fast path, ``chatcore.server.native``),
``chatcore-memory-asgi`` and ``chatcore-sqlite-asgi`` (the same with ``--asgi``: ``/ws``
through the ASGI app on uvicorn, to compare the two paths), ``chatcore-production``
(``chatcore serve --backend production``, configured by the ``CHATCORE_*`` environment),
``chatcore-gateway`` (the same as ``chatcore gateway``: ``/ws`` and the Router only; the
pipeline runs in ``chatcore worker`` processes after ``chatcore init``),
and the peers ``socketio``, ``websockets`` and ``uvicorn`` (a trivial ASGI WebSocket app
on the same uvicorn settings as ``chatcore serve``). The chatcore targets build the same
server as ``chatcore serve``, with two changes a load test needs: the per-user send rate
limit (20/s) and the per-connection frame limit (50/s) are lifted, and the listen
backlog is raised. No target negotiates permessage-deflate (as ``chatcore serve`` does
not), so every server does the same work; ``CHATCORE_BENCH_DEFLATE=1`` turns it on for
every target (uvicorn's and ``websockets``' own default). The uvicorn targets run on
uvloop, as ``chatcore serve`` and a default uvicorn do (``CHATCORE_BENCH_UVLOOP=0``: on
asyncio's own loop, as runs before 2026-12-07 did). Every target runs with the
garbage-collector settings of ``chatcore serve`` (``chatcore._gc``).
``CHATCORE_BENCH_UNBOUNDED=1`` turns off a chatcore target's admission bounds
(``max_delivery_lag_s`` and ``max_delivery_backlog``), to show what they prevent (the
overload scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from benchmarks.system import raise_fd_limit
from chatcore._gc import freeze_startup_objects, tune_gc

__all__ = ["KINDS", "SECRET", "main", "uvloop_targets"]

KINDS = (
    "chatcore-memory",
    "chatcore-sqlite",
    "chatcore-memory-asgi",
    "chatcore-sqlite-asgi",
    "chatcore-memory-granian",
    "chatcore-production",
    "chatcore-gateway",
    "socketio",
    "websockets",
    "uvicorn",
)
SECRET = "chatcore-benchmark-secret-0123456789abcdef"
"""The token key of chatcore targets (``CHATCORE_SECRET``) unless the environment has one."""
_BACKLOG = 8192
_UNLIMITED = 1e9
_FD_LIMIT = 200_000


def _deflate() -> bool:
    """Whether to offer permessage-deflate (off unless ``CHATCORE_BENCH_DEFLATE=1``)."""
    return os.environ.get("CHATCORE_BENCH_DEFLATE", "0") == "1"


def uvloop_targets() -> bool:
    """Whether the uvicorn targets run on uvloop, as ``chatcore serve`` does (uvicorn's
    ``loop="auto"``): yes unless ``CHATCORE_BENCH_UVLOOP=0`` (the loop of earlier runs)."""
    return os.environ.get("CHATCORE_BENCH_UVLOOP", "1") == "1"


def _unbounded() -> bool:
    """Whether chatcore targets run without admission bounds (``CHATCORE_BENCH_UNBOUNDED=1``)."""
    return os.environ.get("CHATCORE_BENCH_UNBOUNDED", "0") == "1"


def _ready(port: int) -> None:
    freeze_startup_objects()  # as `chatcore serve` does once it has started
    print(f"READY {port}", flush=True)


async def _serve_uvicorn(server: Any) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:
            if server.should_exit:
                raise SystemExit("the server did not start")
            await anyio.sleep(0.02)
        _ready(server.servers[0].sockets[0].getsockname()[1])


def _chatcore_settings(kind: str, data: Path | None) -> Any:
    from chatcore.gateway.session import SessionLimits
    from chatcore.server import ServerSettings

    settings = ServerSettings(
        data_dir=data if kind.startswith("chatcore-sqlite") else None,
        dev=True,
        send_rate_per_s=_UNLIMITED,
        send_burst=_UNLIMITED,
        limits=SessionLimits(frames_per_s=_UNLIMITED, frame_burst=_UNLIMITED),
    )
    from chatcore.node import NodeOptions

    if kind in ("chatcore-production", "chatcore-gateway"):
        from chatcore.backends import production_backends
        from chatcore.config import ProductionConfig
        from chatcore.node import Role

        config = ProductionConfig.load()
        roles: frozenset[Role] | None = None
        if kind == "chatcore-gateway":
            roles = frozenset({"gateway"})
        settings.node = NodeOptions.from_config(config, roles=roles)
        settings.backends = lambda: production_backends(config)
    if _unbounded():
        settings.node = dataclasses.replace(
            settings.node, max_delivery_lag_s=None, max_delivery_backlog=None
        )
    return settings


def _chatcore_server(kind: str, host: str, port: int, data: Path | None) -> Any:
    from chatcore.server.run import build_server

    settings = _chatcore_settings(kind, data)
    native = not kind.endswith("-asgi")
    server = build_server(settings, host=host, port=port, log_level="warning", native=native)
    server.config.backlog = _BACKLOG
    server.config.ws_per_message_deflate = _deflate()
    return server


def _asgi_server(app: Any, host: str, port: int) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        backlog=_BACKLOG,
        ws_per_message_deflate=_deflate(),
    )
    return uvicorn.Server(config)


async def _serve_granian(kind: str, host: str, port: int, data: Path | None) -> None:
    """chatcore's ASGI app (``/ws`` included) on granian's embedded server: the other
    candidate for a compiled WebSocket path (Rust I/O, frames to Python over ASGI)."""
    import signal
    import socket

    from granian.constants import Interfaces
    from granian.server.embed import Server

    from chatcore.server import create_app

    app = create_app(_chatcore_settings(kind, data))
    if not port:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    server = Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        websockets=True,
        backlog=_BACKLOG,
        log_enabled=False,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        with anyio.fail_after(60):
            while True:
                try:
                    await (await anyio.connect_tcp(host, port)).aclose()
                    break
                except OSError:
                    await anyio.sleep(0.05)
        _ready(port)


def main(argv: list[str] | None = None) -> None:
    """Run one target until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.targets")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, default=None, help="SQLite folder (chatcore-sqlite)")
    args = parser.parse_args(argv)
    raise_fd_limit(_FD_LIMIT)
    tune_gc()  # every target, peers included, runs with the GC settings of `chatcore serve`
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("CHATCORE_SECRET", SECRET)
    if args.kind == "websockets":
        from benchmarks.peers.websockets_server import run

        with contextlib.suppress(KeyboardInterrupt):
            anyio.run(run, args.host, args.port, _ready, _deflate())
        return
    if args.kind == "socketio":
        from benchmarks.peers.socketio_server import create_app

        server = _asgi_server(create_app(), args.host, args.port)
    elif args.kind == "uvicorn":
        from benchmarks.peers.asgi_server import app

        server = _asgi_server(app, args.host, args.port)
    elif args.kind.endswith("-granian"):
        anyio.run(_serve_granian, args.kind, args.host, args.port, args.data)
        return
    else:
        server = _chatcore_server(args.kind, args.host, args.port, args.data)
    anyio.run(_serve_uvicorn, server, backend_options={"use_uvloop": uvloop_targets()})


if __name__ == "__main__":
    main()
