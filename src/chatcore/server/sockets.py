"""uvicorn's HTTP and WebSocket protocols with the limits a public server needs.

``build_server`` runs uvicorn with these instead of its defaults:

- :func:`header_deadline_http` (httptools, which ``uvicorn[standard]`` brings): a
  connection must deliver a request's headers within ``header_timeout_s`` of
  connecting, or of the first byte of its next request on a kept-alive connection;
  otherwise it is closed (slowloris). uvicorn itself only times out idle kept-alive
  connections.
- :class:`AbortableWebSocket` (built by :func:`abortable_websocket`): caps each
  WebSocket's kernel send buffer (``SO_SNDBUF``), so what a client does not read piles
  up where the server sees it instead of in megabytes of kernel memory; gives the
  ASGI app a ``chatcore.abort`` extension that measures the bytes sent and not yet
  read (``unread``), closes at once without waiting for the socket to be writable
  (``close``: the close frame goes after the backlog, and the connection is reset if
  the client has not read it within a grace period) and resets the TCP connection
  (``abort``: what the kernel still holds to send is dropped; a client that stopped
  reading never drains the buffer a graceful close waits for); and closes a text
  frame that is not UTF-8 with 1007, logged at debug without a traceback.
- :class:`TokenScrubber`: a logging filter that hides query parameters that look like
  credentials (a name containing ``token``, ``jwt``, ``key``, ``secret``, ``password``
  or ``auth``) in uvicorn's access and connection log lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import struct
from asyncio import BaseTransport, TimerHandle
from typing import Any, ClassVar

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState

try:  # the kernel's send queue of a socket (Linux: SIOCOUTQ, the same as TIOCOUTQ)
    import fcntl
    import termios

    _OUTQ: int | None = termios.TIOCOUTQ
except (ImportError, AttributeError):  # pragma: no cover - not on Linux/macOS
    _OUTQ = None

__all__ = [
    "ABORT_EXTENSION",
    "AbortableWebSocket",
    "TokenScrubber",
    "abortable_websocket",
    "header_deadline_http",
    "kernel_unsent_bytes",
    "scrub_access_logs",
]

logger = logging.getLogger(__name__)

ABORT_EXTENSION = "chatcore.abort"
"""The ASGI scope extension of :class:`AbortableWebSocket`: ``{"abort": callable}``."""


def header_deadline_http(header_timeout_s: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol, closing connections that do not send a request's
    headers within ``header_timeout_s``. Without httptools, uvicorn's h11 protocol
    as is (a warning is logged: it has no header deadline)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
        from uvicorn.protocols.http.h11_impl import H11Protocol

        logger.warning("httptools is not installed: no deadline for request headers")
        return H11Protocol

    class HeaderDeadlineHTTP(HttpToolsProtocol):
        """httptools, with a deadline for each request's headers."""

        _header_timer: TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:  # the next request on a kept-alive connection
                self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def handle_websocket_upgrade(self) -> None:
            super().handle_websocket_upgrade()
            # This protocol is done: its parser calls back into it (a reference cycle
            # that would wait for the collector with the transport and socket in it).
            self.parser = None  # type: ignore[assignment]

        def _arm_header_deadline(self) -> None:
            self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm_header_deadline(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                logger.debug("closing a connection: no request headers in %ss", header_timeout_s)
                self.transport.close()

    return HeaderDeadlineHTTP


def kernel_unsent_bytes(sock: Any) -> int:
    """Bytes the kernel holds in ``sock``'s send queue (sent to the peer's kernel and
    not acknowledged, or not sent yet); 0 where the platform cannot tell."""
    if _OUTQ is None or sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), _OUTQ, b"\0\0\0\0")
    except (OSError, ValueError):  # closed meanwhile
        return 0
    return int(struct.unpack("i", raw)[0])


class AbortableWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with a capped send buffer, the ``chatcore.abort``
    extension (``unread``, ``close``, ``abort``) and a clean 1007."""

    send_buffer_bytes: ClassVar[int | None] = None
    """``SO_SNDBUF`` of each connection (None: the kernel's autotuning)."""

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        size = self.send_buffer_bytes
        sock = transport.get_extra_info("socket")
        if size is not None and sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The extension's bound methods in the scope make a reference cycle with this
        # protocol: break it, so a closed connection is freed without the collector.
        extensions = self.scope.get("extensions") if hasattr(self, "scope") else None
        if extensions:
            extensions.pop(ABORT_EXTENSION, None)

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            extensions: Any = self.scope.setdefault("extensions", {})
            extensions[ABORT_EXTENSION] = {
                "abort": self._abort,
                "unread": self._unread,
                "close": self._close_now,
            }

    def _unread(self) -> int:
        """Bytes sent to the client and not read by it yet, as far as this side can
        tell: this protocol's write buffer plus the kernel's send queue."""
        if self.disconnected:
            return 0
        transport = self.transport
        return transport.get_write_buffer_size() + kernel_unsent_bytes(
            transport.get_extra_info("socket")
        )

    def _close_now(self, code: int, reason: str, grace_s: float) -> None:
        """Queue a close frame behind what is already buffered, without waiting for
        the socket to be writable, and reset the connection unless the client has read
        up to it and it closed within ``grace_s``. The app's ``receive`` gets the
        disconnect at once."""
        if self.disconnected:
            return
        if not self.close_sent:
            self.close_sent = True
            self.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
            with contextlib.suppress(InvalidState):
                self.conn.send_close(code, reason)
                self.transport.write(b"".join(self.conn.data_to_send()))
            if self.read_paused:  # the client's close frame may still come
                self.read_paused = False
                self.transport.resume_reading()
        self.loop.call_later(grace_s, self._abort)

    def _abort(self) -> None:
        """Reset the TCP connection: what the kernel still holds to send is dropped
        too (SO_LINGER 0), instead of trickling out to a client that does not read."""
        if self.disconnected:
            return
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def send_receive_event_to_app(self) -> None:
        if self.curr_msg_data_type != "text":
            super().send_receive_event_to_app()
            return
        # uvicorn's text path, with a clean close for bad UTF-8 (it logs a traceback)
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            logger.debug("closing a WebSocket with 1007: a text frame is not UTF-8")
            self.conn.send_close(1007, "text frame is not UTF-8")
            self.handle_parser_exception()
            return
        self.queue.put_nowait({"type": "websocket.receive", "text": text})
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()


def abortable_websocket(send_buffer_bytes: int | None) -> type[AbortableWebSocket]:
    """:class:`AbortableWebSocket` with ``SO_SNDBUF`` set to ``send_buffer_bytes`` on
    every accepted connection (None: the kernel's default and autotuning)."""
    return type(
        "AbortableWebSocket", (AbortableWebSocket,), {"send_buffer_bytes": send_buffer_bytes}
    )


_SECRET_PARAM = re.compile(
    r"(?i)([?&][\w.-]*(?:token|jwt|key|secret|password|auth)[\w.-]*=)[^&\s\"]*"
)


class TokenScrubber(logging.Filter):
    """Replaces the values of credential-like query parameters in a record's
    arguments with ``***``. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, str) and "=" in a for a in args):
            record.args = tuple(
                _SECRET_PARAM.sub(r"\1***", a) if isinstance(a, str) else a for a in args
            )
        return True


_SCRUBBER = TokenScrubber()


def scrub_access_logs() -> None:
    """Install :class:`TokenScrubber` on uvicorn's access and connection loggers
    (idempotent)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_SCRUBBER)
