"""uvicorn's HTTP and WebSocket protocols with the limits a public server needs.

``build_server`` runs uvicorn with these instead of its defaults:

- :func:`header_deadline_http` (httptools, which ``uvicorn[standard]`` brings): a
  connection must deliver a request's headers within ``header_timeout_s`` of
  connecting, or of the first byte of its next request on a kept-alive connection;
  otherwise it is closed (slowloris). uvicorn itself only times out idle kept-alive
  connections.
- :class:`AbortableWebSocket`: gives the ASGI app a ``chatcore.abort`` extension that
  resets the TCP connection at once, dropping what the kernel still holds to send (a
  client that stopped reading never drains the buffer a graceful close waits for),
  and closes a text frame that is not UTF-8 with 1007, logged at debug without a
  traceback.
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
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

__all__ = [
    "ABORT_EXTENSION",
    "AbortableWebSocket",
    "TokenScrubber",
    "header_deadline_http",
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


class AbortableWebSocket(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol with an abort extension and a clean 1007."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            extensions: Any = self.scope.setdefault("extensions", {})
            extensions[ABORT_EXTENSION] = {"abort": self._abort}

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
