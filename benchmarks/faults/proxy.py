"""A TCP relay a scenario can cut: every open connection reset, new ones refused.

Clients connect to the relay instead of the gateway; :meth:`CuttableRelay.cut`
resets every relayed connection at once (RST, no close frame: what a dropped
network looks like to both ends) and resets every new one until it ends.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.abc

__all__ = ["CuttableRelay", "relay"]


def _reset(stream: anyio.abc.SocketStream) -> None:
    sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class CuttableRelay:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cutting = False
        self.connections = 0
        self._scopes: set[anyio.CancelScope] = set()
        self._streams: set[anyio.abc.SocketStream] = set()

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        if self.cutting:
            _reset(client)
            await client.aclose()
            return
        self.connections += 1
        try:
            upstream = await anyio.connect_tcp("127.0.0.1", self.upstream_port)
        except OSError:
            _reset(client)
            await client.aclose()
            return
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            self._streams |= {client, upstream}
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pump, client, upstream, tg.cancel_scope)
                    tg.start_soon(self._pump, upstream, client, tg.cancel_scope)
            finally:
                self._scopes.discard(scope)
                self._streams -= {client, upstream}
        await client.aclose()
        await upstream.aclose()

    @staticmethod
    async def _pump(
        src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream, scope: anyio.CancelScope
    ) -> None:
        try:
            async for chunk in src:
                await dst.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        scope.cancel()

    def reset_all(self) -> None:
        """Reset every relayed connection now (both sides get an RST)."""
        for stream in list(self._streams):
            _reset(stream)
        for scope in list(self._scopes):
            scope.cancel()

    async def cut(self, seconds: float) -> None:
        """Reset everything, refuse new connections for ``seconds``, then relay again."""
        self.cutting = True
        self.reset_all()
        try:
            await anyio.sleep(seconds)
        finally:
            self.cutting = False


@asynccontextmanager
async def relay(upstream_port: int) -> AsyncIterator[CuttableRelay]:
    """A relay to 127.0.0.1:``upstream_port`` on a free loopback port."""
    r = CuttableRelay(upstream_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    r.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, r._handle)
        try:
            yield r
        finally:
            r.reset_all()
            tg.cancel_scope.cancel()
