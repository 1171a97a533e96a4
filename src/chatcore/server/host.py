"""What a client connection needs from its server, in one object.

:class:`~chatcore.server.app.ChatServer` builds one :class:`ConnectionHost` and
hands it to every :class:`~chatcore.server.websocket.ClientConnection`, which reads
nothing else of the server. The server's settings, routes and connection set stay
its own, so ``app.py`` and ``websocket.py`` each depend on this interface and not
on each other's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chatcore.gateway.session import GatewaySession, SessionLimits
from chatcore.node import ChatNode
from chatcore.pipeline.hub import LocalConnection
from chatcore.protocol import DEFAULT_MAX_FRAME_BYTES, Message, codec_for
from chatcore.ratelimit import RateLimiter
from chatcore.server.handler import RequestHandler
from chatcore.server.metrics import ServerMetrics
from chatcore.server.push import PushFrames

__all__ = ["ConnectionHost"]


class ConnectionHost:
    """A server's parts its connections share: session rules, metrics, the push-frame
    cache, whether it is draining, and the running node."""

    def __init__(
        self,
        verify_token: Callable[[str], str],
        *,
        metrics: ServerMetrics,
        limits: SessionLimits | None = None,
        send_limiter: RateLimiter | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        links: Callable[[Message], Message] | None = None,
    ) -> None:
        """``verify_token`` returns the user id of a token or raises Unauthorized;
        ``send_limiter`` is the one budget per user of this server's sessions;
        ``links`` signs the attachment URLs of the messages connections receive."""
        self.limits = limits or SessionLimits()
        """The rules of sessions opened from now on."""
        self.metrics = metrics
        self.push_frames = PushFrames(metrics, links=links)
        self._links = links
        self.draining = False
        """Set on shutdown: connections stop taking requests."""
        self._verify = verify_token
        self._send_limiter = send_limiter
        self._max_frame_bytes = max_frame_bytes
        self._node: ChatNode | None = None

    @property
    def node(self) -> ChatNode:
        """The running node; raises RuntimeError outside :meth:`serving`."""
        if self._node is None:
            raise RuntimeError("the server is not running (run its lifespan)")
        return self._node

    @property
    def running(self) -> bool:
        return self._node is not None

    @contextmanager
    def serving(self, node: ChatNode) -> Iterator[None]:
        """Connections are served by ``node`` for the duration of the block."""
        self._node = node
        try:
            yield
        finally:
            self._node = None

    def session(self, subprotocol: str, *, now: float) -> GatewaySession:
        """A new session speaking ``subprotocol`` under this server's rules."""
        codec = codec_for(subprotocol, max_frame_bytes=self._max_frame_bytes)
        return GatewaySession(
            codec, self._verify, now=now, limits=self.limits, send_limiter=self._send_limiter
        )

    async def open(self, user: str, device: str) -> tuple[LocalConnection, RequestHandler]:
        """Register a device connection of ``user`` on the node, with the handler of
        its requests. Raises RuntimeError when the node is not running."""
        node = self.node
        conn = await node.open_connection(user, device)
        self.metrics.connections.inc()
        return conn, RequestHandler(node, conn, links=self._links)

    async def close(self, conn: LocalConnection) -> None:
        """Unregister a connection that :meth:`open` registered."""
        conn.when_ready(None)
        self.metrics.connections.dec()
        await conn.aclose()
