"""A bare ``websockets`` server that holds connections: the peer for memory per connection."""

from __future__ import annotations

from collections.abc import Callable

from websockets.asyncio.server import ServerConnection, serve

__all__ = ["run"]


async def _hold(ws: ServerConnection) -> None:
    async for _ in ws:  # idle clients send nothing; answer nothing
        pass


async def run(host: str, port: int, ready: Callable[[int], None], deflate: bool = True) -> None:
    """Serve until cancelled; ``ready(port)`` once listening."""
    compression = "deflate" if deflate else None
    async with serve(
        _hold, host, port, backlog=8192, ping_interval=20, compression=compression
    ) as server:
        bound = next(iter(server.sockets)).getsockname()[1]
        ready(bound)
        await server.serve_forever()
