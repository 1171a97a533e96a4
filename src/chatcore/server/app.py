"""The reference server: an ASGI app over a ChatNode (``/ws``, ``/media``, ``/healthz``,
``/metrics``).

:class:`ChatServer` owns the node and the connections. Use ``create_app(settings)``
for a standalone app, or mount ``ChatServer.app`` into your own Starlette/FastAPI
app and run ``ChatServer.lifespan`` from yours (mounted apps get no lifespan of their
own)::

    chat = ChatServer(ServerSettings(data_dir="./chat-data"))
    app = FastAPI(lifespan=chat.lifespan)
    app.mount("/chat", chat.app)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest
from chatcore.gateway.session import SessionLimits
from chatcore.media import UrlSigner
from chatcore.node import ChatNode, NodeOptions
from chatcore.protocol import DEFAULT_MAX_FRAME_BYTES
from chatcore.push.config import PushConfig
from chatcore.ratelimit import RateLimiter
from chatcore.server.auth import TokenAuthority
from chatcore.server.host import ConnectionHost
from chatcore.server.media import MediaLinks, MediaRoutes, MediaSettings
from chatcore.server.metrics import ServerMetrics, watch_lag
from chatcore.server.policy import SecurityHeaders, dev_user_name, is_loopback_host, origin_allowed
from chatcore.server.websocket import WRITER_IDLE_S, ClientConnection, ServedConnection
from chatcore.telemetry import NO_TELEMETRY

__all__ = ["ChatServer", "ServerSettings", "create_app"]

logger = logging.getLogger(__name__)

STATIC = Path(str(resources.files("chatcore.server") / "static"))


@dataclass(kw_only=True)
class ServerSettings:
    """How the server runs. Every field has a default fit for a laptop."""

    data_dir: str | Path | None = "./chatcore-data"
    """Where the embedded SQLite backends keep their files (None: in memory)."""
    dev: bool = False
    """Dev mode: log in by name from the browser page; a generated key if no secret."""
    allowed_origins: list[str] | None = None
    """Browser origins allowed to open ``/ws`` besides the server's own, matched
    exactly (``https://chat.example.com``; ``"*"``: any). Clients that send no
    ``Origin`` (not browsers) are always allowed."""
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    """The largest frame a client may send (64 KiB); a larger one is answered ``too_large``."""
    send_rate_per_s: float = 20.0
    """Messages a user may send per second, on average (per gateway process)."""
    send_burst: float = 50.0
    """Messages a user may send at once, above the rate (per gateway process)."""
    limits: SessionLimits = field(default_factory=SessionLimits)
    """Per-connection rules: hello deadline, heartbeat, bad frames, frame rate."""
    node: NodeOptions = field(default_factory=NodeOptions)
    """How the chat node inside the server runs (partitions, roles, limits)."""
    backends: Callable[[], Backends | Awaitable[Backends]] | None = None
    """Backends to run on; default: embedded (SQLite under ``data_dir``, or memory)."""
    drain_timeout_s: float = 5.0
    """On shutdown, how long requests in progress may take before clients are closed."""
    send_timeout_s: float = 10.0
    """How long a send may wait on a client that stopped reading before the connection
    is dropped (counted as a 4008 close) and freed."""
    close_grace_s: float = 10.0
    """A connection closed as a slow consumer (4008) gets this long to read up to its
    close frame (queued behind what it has not read); then it is reset and freed
    (10 s: the close timeout of uvicorn and of the ``websockets`` client)."""
    socket_send_buffer_bytes: int | None = 256 * 1024
    """``chatcore serve``: the kernel send buffer (``SO_SNDBUF``) of each WebSocket
    (256 KiB, about 2.5 MB/s at a 100 ms round trip; None: the kernel's autotuning,
    up to ``net.ipv4.tcp_wmem``'s maximum, 4 MiB on Linux). Caps the kernel memory a
    client that stops reading holds, and makes its backlog visible to the server
    (``SessionLimits.max_unread_bytes``)."""
    max_connections_per_user: int = 16
    """Open connections a user may have on this server (-1: no limit); one more is
    answered ``rate_limited`` and closed with 1008."""
    connect_rate_per_s: float = 2.0
    """Connections a user may open per second, on average (per server process)."""
    connect_burst: float = 20.0
    """Connections a user may open at once, above the rate; one more is answered
    ``rate_limited`` (with ``retry_after_ms``) and closed with 1008."""
    header_timeout_s: float = 10.0
    """``chatcore serve``: an HTTP connection must send its request headers within this
    long (slowloris); see ``chatcore.server.sockets``."""
    ws_ping_interval_s: float | None = 30.0
    """``chatcore serve``: how often the server pings each WebSocket (None: never)."""
    ws_ping_timeout_s: float | None = 60.0
    """``chatcore serve``: a WebSocket whose pong is this late is closed with 1011;
    above ``send_timeout_s``, so a client that reads slowly is dropped as slow (and
    resyncs) before its queued pings time out."""
    push: PushConfig | None = None
    """Push services and push target rules (None: ``PushConfig()``, log lines only). Its
    notifier replaces that of ``backends``; given ``backends``, pass them ``push.rules()``."""
    media: MediaSettings = field(default_factory=MediaSettings)
    """Uploads, signed download URLs, thumbnails and the retention sweep (``/media``)."""


class ChatServer:
    """A ChatNode behind WebSockets, with the browser client and metrics."""

    def __init__(self, settings: ServerSettings | None = None) -> None:
        """Raises InvalidRequest for settings out of range (a timeout that is not
        positive, a connection cap of 0)."""
        self.settings = s = settings or ServerSettings()
        _check_limits(s)
        self.metrics = ServerMetrics()
        self.authority = TokenAuthority.from_environment(s.data_dir, dev=s.dev)
        self.media_links = MediaLinks(
            UrlSigner(self.authority.derived_key("media URL signing v1")),
            ttl_s=s.media.url_ttl_s,
            prefix=s.media.url_prefix,
        )
        """Signs the download URLs of attachments in the messages clients receive."""
        self.host = ConnectionHost(
            self.authority.identify,
            metrics=self.metrics,
            limits=s.limits,
            send_limiter=RateLimiter(rate_per_s=s.send_rate_per_s, burst=s.send_burst),
            max_frame_bytes=s.max_frame_bytes,
            max_connections_per_user=s.max_connections_per_user,
            send_timeout_s=s.send_timeout_s,
            close_grace_s=s.close_grace_s,
            connect_limiter=RateLimiter(rate_per_s=s.connect_rate_per_s, burst=s.connect_burst),
            links=self.media_links.message,
        )
        """What every connection of this server shares (see ``chatcore.server.host``)."""
        self.connections: set[ServedConnection] = set()
        """Every open chat socket, on either path (ASGI or ``chatcore.server.native``)."""
        self._vapid_public_key: str | None = None
        self.media = MediaRoutes(
            lambda: self.host.node, self.authority.verify, self.media_links, s.media
        )
        """``/media``: uploads, signed downloads, fresh links, the retention sweep."""
        self.app = self.asgi_app()

    def asgi_app(self, lifespan: Any = None) -> Starlette:
        """The Starlette app of this server: ``/ws`` (served by plain ASGI, ahead of
        the routing and exception middleware), ``/healthz``, ``/metrics``, the dev
        login, ``/media`` and the browser client."""
        routes: list[Any] = [
            Route("/healthz", self._healthz),
            Route("/metrics", self._metrics),
            Route("/api/dev/token", self._dev_token, methods=["POST"]),
            Route("/api/push", self._push_settings),
            *self.media.routes(),
        ]
        if STATIC.is_dir():
            routes.append(Route("/", self._index))
            routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
        middleware = [Middleware(_WebSocketPath, server=self), Middleware(SecurityHeaders)]
        return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)

    @property
    def node(self) -> ChatNode:
        """The running node; raises RuntimeError outside :meth:`lifespan`."""
        return self.host.node

    @property
    def running(self) -> bool:
        """Inside :meth:`lifespan`: the node runs."""
        return self.host.running

    @property
    def draining(self) -> bool:
        """Shutting down: no new connection or request is taken."""
        return self.host.draining

    async def _backends(self) -> Backends:
        s = self.settings
        push = s.push or PushConfig()
        if s.backends is not None:
            made = s.backends()
            backends = await made if inspect.isawaitable(made) else made
        elif s.data_dir is None:
            backends = Backends.in_memory(push_rules=push.rules())
        else:
            backends = Backends.embedded(s.data_dir, push_rules=push.rules())
        if push.configured:
            backends.push = await push.notifier(backends.push_tokens)
        return backends

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """Run the node while the ASGI app runs; drain and close clients on the way out."""
        options = self.settings.node
        if options.telemetry is NO_TELEMETRY:  # the pipeline reports to /metrics
            options = dataclasses.replace(options, telemetry=self.metrics)
        self._count_tasks()
        async with ChatNode(await self._backends(), options) as node:
            with self.host.serving(node):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch_lag, node, self.metrics)
                    tg.start_soon(self._retire_idle_writers)
                    tg.start_soon(self.media.sweep_forever)
                    try:
                        yield
                    finally:
                        await self.drain()
                        tg.cancel_scope.cancel()

    def _count_tasks(self) -> None:
        """``chatcore_event_loop_tasks`` counts this loop's tasks (asyncio only)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on asyncio (trio)
            return
        self.metrics.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))

    async def drain(self) -> None:
        """Stop taking requests, let those in progress finish, close clients with 1001."""
        self.host.draining = True
        with anyio.move_on_after(self.settings.drain_timeout_s):
            while any(c.busy for c in self.connections):  # noqa: ASYNC110 (short poll)
                await anyio.sleep(0.01)
        for conn in list(self.connections):
            await conn.go_away()

    async def serve_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI ``websocket`` scope as a chat connection."""
        if (await receive())["type"] != "websocket.connect":
            return
        origin = _header(scope, b"origin")  # no dict of headers kept for the socket's life
        if not origin_allowed(origin, _header(scope, b"host"), self.settings.allowed_origins):
            await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})
            return
        if self.draining:
            await send({"type": "websocket.close", "code": 1001, "reason": "server going away"})
            return
        conn = ClientConnection(self.host, scope, receive, send)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)

    async def _healthz(self, request: Request) -> Response:
        ok = self.running and not self.draining
        status = {"status": "ok" if ok else "unavailable", "connections": len(self.connections)}
        return JSONResponse(status, status_code=200 if ok else 503)

    async def _metrics(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def _dev_token(self, request: Request) -> Response:
        if not self.settings.dev:
            return JSONResponse({"error": "dev login is off"}, status_code=404)
        if not is_loopback_host(request.headers.get("host")):
            message = "the dev login answers only on localhost, 127.0.0.1 or [::1]"
            return JSONResponse({"error": message}, status_code=403)
        try:
            body = await request.json()
        except ValueError:
            body = None
        user = dev_user_name(body.get("user")) if isinstance(body, dict) else None
        if user is None:
            message = 'give {"user": "name"}: 1-64 letters, digits, ".", "_", "@" or "-"'
            return JSONResponse({"error": message}, status_code=400)
        return JSONResponse({"user": user, "token": self.authority.issue(user)})

    def revoke_user(self, user: str) -> int:
        """Refuse every token of ``user`` issued until now and close that user's
        sockets on this server with 4001 ("token revoked"); the number of sockets.
        Per process: revoke on every gateway."""
        self.authority.revoke(user)
        closed = 0
        for conn in list(self.connections):
            if conn.session.user == user:
                conn.close_unauthorized("token revoked")
                closed += 1
        return closed

    async def _push_settings(self, request: Request) -> Response:
        """What the browser page needs to subscribe to Web Push (``null``: not offered)."""
        if self._vapid_public_key is None:
            push = self.settings.push
            self._vapid_public_key = (push.vapid_public_key() if push else None) or ""
        return JSONResponse({"vapid_public_key": self._vapid_public_key or None})

    async def _index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def _retire_idle_writers(self) -> None:
        """The sweeper: idle writers, stalled sends, expired tokens."""
        s = self.settings
        interval = min(WRITER_IDLE_S, s.send_timeout_s, s.limits.unread_timeout_s) / 2
        while True:
            await anyio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                conn.retire_idle_writer(now)
                if not conn.drop_if_stalled(now) and not conn.check_backlog(now):
                    conn.tick(now)


def _check_limits(s: ServerSettings) -> None:
    names = ("send_timeout_s", "header_timeout_s", "drain_timeout_s", "connect_rate_per_s")
    for name in (*names, "connect_burst", "close_grace_s"):
        value = getattr(s, name)
        if not value > 0:
            raise InvalidRequest(f"ServerSettings.{name} must be above 0, got {value!r}")
    if s.socket_send_buffer_bytes is not None and s.socket_send_buffer_bytes < 4096:
        got = s.socket_send_buffer_bytes
        raise InvalidRequest(f"socket_send_buffer_bytes must be None or at least 4096, got {got}")
    if not s.limits.unread_timeout_s > 0:
        got_s = s.limits.unread_timeout_s
        raise InvalidRequest(f"SessionLimits.unread_timeout_s must be above 0, got {got_s!r}")
    if s.limits.max_unread_bytes < -1:
        got = s.limits.max_unread_bytes
        raise InvalidRequest(f"SessionLimits.max_unread_bytes must be -1 or above, got {got}")
    if s.max_connections_per_user == 0 or s.max_connections_per_user < -1:
        got = s.max_connections_per_user
        raise InvalidRequest(f"max_connections_per_user must be -1 or at least 1, got {got}")


def create_app(settings: ServerSettings | None = None) -> Starlette:
    """A standalone ASGI app running its own ChatNode."""
    server = ChatServer(settings)
    app = server.asgi_app(lifespan=server.lifespan)
    app.state.chat_server = server
    return app


class _WebSocketPath:
    """ASGI middleware: ``/ws`` goes straight to the ChatServer, the rest to the app.

    A chat connection lives for hours and sends many frames: skipping Starlette's
    routing and the exception middleware's ``send`` wrapper saves CPU on every frame
    and memory on every connection (their frames stay alive as long as the socket).
    """

    def __init__(self, app: ASGIApp, server: ChatServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and _route_path(scope) == "/ws":
            await self.server.serve_websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route_path(scope: Scope) -> str:
    """The path below where the app is mounted (as Starlette's routing sees it)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path
