"""Serving the app with uvicorn, draining chatcore clients (close 1001) before it stops.

By default ``/ws`` is served on the fast path (``chatcore.server.native``: picows
behind uvicorn's HTTP, on the same port); ``native=False`` serves it through the
ASGI app like any ASGI server would."""

from __future__ import annotations

from typing import Any

import uvicorn

from chatcore._gc import freeze_startup_objects, tune_gc
from chatcore.server.app import ChatServer, ServerSettings, create_app
from chatcore.server.native import NativeGateway, native_websocket
from chatcore.server.sockets import abortable_websocket, header_deadline_http, scrub_access_logs

__all__ = ["DrainingServer", "build_server", "freeze_startup_objects", "tune_gc"]


class DrainingServer(uvicorn.Server):
    """uvicorn's server; on shutdown the chat clients are told first (1001), then it stops.

    With ``gc_tuning`` (the default of :func:`build_server`), the objects alive once
    the app has started are frozen out of the garbage collector's scans.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        chat: ChatServer,
        *,
        gc_tuning: bool = False,
        native: NativeGateway | None = None,
    ):
        super().__init__(config)
        self.chat = chat
        self.gc_tuning = gc_tuning
        self.native = native
        """The fast path serving ``/ws`` (None: the ASGI app serves it)."""

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.gc_tuning:
            freeze_startup_objects()

    async def shutdown(self, sockets: Any = None) -> None:
        if self.chat.running:
            await self.chat.drain()
        if self.native is not None:  # the close handshakes, then unregistering
            await self.native.wait_closed(self.chat.settings.drain_timeout_s)
        await super().shutdown(sockets)


def build_server(
    settings: ServerSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    gc_tuning: bool = True,
    native: bool = True,
) -> DrainingServer:
    """The server ``chatcore serve`` runs. ``gc_tuning``: collect garbage less often
    and freeze what startup made (see ``chatcore._gc``); it changes the process-wide
    collector settings, so turn it off when the process is not only this server.

    uvicorn runs with chatcore's protocols (``chatcore.server.sockets``): a deadline
    for request headers (``settings.header_timeout_s``), WebSockets the server can
    measure and abort, their kernel send buffer capped
    (``settings.socket_send_buffer_bytes``), its pings per
    ``settings.ws_ping_interval_s`` / ``ws_ping_timeout_s``,
    and credential-like query parameters hidden in its logs.

    ``native`` (the default): ``/ws`` runs on picows (``chatcore.server.native``),
    other WebSocket paths and all of HTTP on uvicorn, on the same port; False: ``/ws``
    too is served by the ASGI app (uvicorn's WebSocket protocol)."""
    if gc_tuning:
        tune_gc()
    app = create_app(settings)
    chat: ChatServer = app.state.chat_server
    gateway = NativeGateway(chat) if native else None
    asgi_ws = abortable_websocket(settings.socket_send_buffer_bytes)
    ws: type = asgi_ws if gateway is None else native_websocket(gateway, asgi_ws)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws_max_size=4 * 1024 * 1024,
        ws_per_message_deflate=False,  # ~41 KiB per connection and 12-23% CPU (benchmarks)
        http=header_deadline_http(settings.header_timeout_s),
        ws=ws,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
    )
    scrub_access_logs()  # after uvicorn.Config has configured its loggers
    return DrainingServer(config, chat, gc_tuning=gc_tuning, native=gateway)
