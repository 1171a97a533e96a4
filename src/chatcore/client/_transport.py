"""The byte pipe under the client: a ``Transport`` port and its WebSocket implementation.

The client speaks frames; a transport moves the encoded bytes of one frame at a
time and reports the close code when the connection ends. Only this module
imports ``websockets``; a test can hand the client any other ``Connector``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from chatcore._extras import missing_extra
from chatcore.errors import ConnectionClosed, Unauthorized, Unavailable

try:
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConcurrencyError, InvalidHandshake, InvalidStatus, InvalidURI
    from websockets.exceptions import ConnectionClosed as WsClosed
    from websockets.typing import Subprotocol
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("client", exc, needed_by="chatcore.client") from exc

__all__ = ["Connector", "Transport", "WebSocketTransport", "connect_websocket"]


class Transport(Protocol):
    """One open connection that carries whole frames."""

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol the server chose (None if it chose none)."""
        ...

    async def send(self, data: bytes, *, binary: bool) -> None:
        """Send one frame (UTF-8 text unless ``binary``); raise ConnectionClosed once closed."""
        ...

    async def receive(self) -> bytes | str:
        """The next frame; raise ConnectionClosed with the close code when the connection ends."""
        ...

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code``; idempotent, never raises."""
        ...

    def abort(self) -> None:
        """Drop the connection at once without a closing handshake; never raises."""
        ...


Connector = Callable[[str, Sequence[str]], Awaitable[Transport]]
"""Opens a transport to a URL offering subprotocols; raises Unavailable or Unauthorized."""


class WebSocketTransport:
    """A :class:`Transport` over a ``websockets`` asyncio client connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self._ws = connection

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    async def send(self, data: bytes, *, binary: bool) -> None:
        """Send one frame; raise ConnectionClosed once closed."""
        try:
            if binary:
                await self._ws.send(data)
            else:
                await self._ws.send(data, text=True)
        except WsClosed as exc:
            raise _closed(exc) from exc

    async def receive(self) -> bytes | str:
        """The next frame; raise ConnectionClosed with the close code when the connection ends."""
        try:
            return await self._ws.recv()
        except WsClosed as exc:
            raise _closed(exc) from exc
        except ConcurrencyError as exc:  # a bug in the caller, not the network
            raise RuntimeError("two tasks receive from one transport") from exc

    async def aclose(self, code: int = 1000, reason: str = "") -> None:
        """Close with a closing handshake; idempotent, never raises."""
        try:
            await self._ws.close(code, reason)
        except Exception:  # already gone: nothing left to close
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        transport = self._ws.transport
        if transport is not None:
            transport.abort()


def _closed(exc: WsClosed) -> ConnectionClosed:
    received = exc.rcvd
    code = None if received is None else int(received.code)
    reason = "" if received is None else received.reason
    text = f"connection closed ({code if code is not None else 'no close frame'})"
    return ConnectionClosed(f"{text}: {reason}" if reason else text, close_code=code, reason=reason)


async def connect_websocket(
    url: str,
    subprotocols: Sequence[str],
    *,
    open_timeout_s: float = 10.0,
    max_frame_bytes: int = 8 * 1024 * 1024,
    close_timeout_s: float = 2.0,
) -> WebSocketTransport:
    """Open a WebSocket offering ``subprotocols``.

    Raises Unauthorized if the server refuses the upgrade with 401 or 403, and
    Unavailable if it cannot be reached, refuses otherwise or takes longer than
    ``open_timeout_s``.
    """
    try:
        connection = await connect(
            url,
            subprotocols=[Subprotocol(name) for name in subprotocols],
            open_timeout=open_timeout_s,
            close_timeout=close_timeout_s,
            ping_interval=None,  # the client sends protocol pings on the server's heartbeat
            max_size=max_frame_bytes,
            compression=None,  # small frames: deflate costs memory and CPU (benchmarks)
            proxy=None,
        )
    except InvalidURI as exc:
        raise ValueError(f"not a WebSocket URL: {url!r}") from exc
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise Unauthorized(f"the server refused the connection with HTTP {status}") from exc
        raise Unavailable(f"the server refused the connection with HTTP {status}") from exc
    except InvalidHandshake as exc:
        raise Unavailable(f"WebSocket handshake failed: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"cannot reach {url}: {exc}") from exc
    return WebSocketTransport(connection)
