"""What a client connection needs from its server, in one object.

:class:`~chatcore.server.app.ChatServer` builds one :class:`ConnectionHost` and
hands it to every :class:`~chatcore.server.websocket.ClientConnection`, which reads
nothing else of the server. The server's settings, routes and connection set stay
its own, so ``app.py`` and ``websocket.py`` each depend on this interface and not
on each other's internals.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from chatcore.errors import RateLimited
from chatcore.gateway.session import GatewaySession, Identity, SessionLimits
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
        verify_token: Callable[[str], str | Identity],
        *,
        metrics: ServerMetrics,
        limits: SessionLimits | None = None,
        send_limiter: RateLimiter | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_connections_per_user: int = 16,
        send_timeout_s: float = 10.0,
        close_grace_s: float = 10.0,
        connect_limiter: RateLimiter | None = None,
        links: Callable[[Message], Message] | None = None,
    ) -> None:
        """``verify_token`` returns the user id (or Identity) of a token or raises
        Unauthorized; ``send_limiter`` is the one budget per user of this server's
        sessions; ``max_connections_per_user`` (-1: no limit) caps each user's open
        connections; ``send_timeout_s`` is how long a send may wait on a client;
        ``close_grace_s`` how long a client closed as slow has to read up to its close
        frame before the connection is reset;
        ``connect_limiter`` limits how fast each user opens connections; ``links``
        signs the attachment URLs of the messages connections receive."""
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
        self.max_connections_per_user = max_connections_per_user
        """Open connections a user may have on this server (-1: no limit)."""
        self.send_timeout_s = send_timeout_s
        """A send waiting on a client this long drops the connection (it stopped reading)."""
        self.close_grace_s = close_grace_s
        """A connection closed as slow (4008) is reset if its client has not read up
        to the close frame within this long."""
        self._per_user: Counter[str] = Counter()
        self._connect_limiter = connect_limiter
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
        its requests. Raises RateLimited when ``user`` already has
        ``max_connections_per_user`` connections or opens them too fast, RuntimeError
        when the node is not running."""
        node = self.node
        cap = self.max_connections_per_user
        if 0 <= cap <= self._per_user[user]:
            raise RateLimited(
                f"too many connections for this user (limit {cap})", retry_after_ms=1000
            )
        if self._connect_limiter is not None:
            self._connect_limiter.check(user, time.monotonic())
        self._per_user[user] += 1
        try:
            conn = await node.open_connection(user, device)
        except BaseException:
            self._release(user)
            raise
        self.metrics.connections.inc()
        return conn, RequestHandler(node, conn, links=self._links)

    def connections_of(self, user: str) -> int:
        """How many connections ``user`` has open on this server."""
        return self._per_user[user]

    async def close(self, conn: LocalConnection) -> None:
        """Unregister a connection that :meth:`open` registered."""
        conn.when_ready(None)
        self.metrics.connections.dec()
        self._release(conn.user)
        await conn.aclose()

    def _release(self, user: str) -> None:
        left = self._per_user[user] - 1
        if left > 0:
            self._per_user[user] = left
        else:
            del self._per_user[user]
