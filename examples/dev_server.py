"""Run a tour of the examples against the reference server in this process (dev mode,
in memory), as ``python -m examples.groups`` and ``python -m examples.messages`` do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from chatcore.server import ServerSettings
from chatcore.server.run import build_server

Tour = Callable[[str, Callable[[str], str]], Awaitable[dict[str, Any]]]


async def run_tour(tour: Tour) -> dict[str, Any]:
    """Start a dev server on a free port, run ``tour(url, token)``, print what it saw."""
    server = build_server(
        ServerSettings(data_dir=None, dev=True), port=0, log_level="warning", gc_tuning=False
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve)
        while not server.started:  # noqa: ASYNC110 (uvicorn has no started event)
            await anyio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        seen = await tour(f"ws://127.0.0.1:{port}/ws", server.chat.authority.issue)
        server.should_exit = True
    for key, value in seen.items():
        print(f"{key}: {value}")
    return seen
