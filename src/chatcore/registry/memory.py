"""In-memory ``ConnectionRegistry``: single process only.

Each registration lives ``ttl_s`` seconds on a monotonic ``clock`` (injectable for
tests). Expired registrations are dropped lazily: every call first pops the ones
whose deadline has passed from a heap, so memory stays bounded by the live ones
(plus one heap entry per re-registration until its old deadline passes).
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Sequence

from chatcore._memory import MemoryAdapter
from chatcore.errors import InvalidRequest
from chatcore.model import Connection

__all__ = ["MemoryConnectionRegistry"]


class MemoryConnectionRegistry(MemoryAdapter):
    """Live connections by user, each expiring ``ttl_s`` after its last ``register``.

    ``clock`` (default ``time.monotonic``) returns seconds. ``lookup`` lists a user's
    connections in the order they were first registered.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_user: dict[str, dict[Connection, float]] = {}
        self._by_gateway: dict[str, set[Connection]] = {}
        self._deadlines: list[tuple[float, int, Connection]] = []
        self._order = 0

    async def register(self, conn: Connection, *, ttl_s: float) -> None:
        """Record a live connection for ``ttl_s`` seconds (again: refresh its deadline).

        Raises ``InvalidRequest`` if ``ttl_s`` is not positive and finite, and
        ``ChatcoreClosed`` after ``aclose()``.
        """
        if not math.isfinite(ttl_s) or ttl_s <= 0:
            raise InvalidRequest(f"ttl_s must be a positive finite number, got {ttl_s}")
        now = await self._sweep()
        deadline = now + ttl_s
        self._by_user.setdefault(conn.user, {})[conn] = deadline
        self._by_gateway.setdefault(conn.gateway, set()).add(conn)
        self._order += 1
        heapq.heappush(self._deadlines, (deadline, self._order, conn))

    async def register_many(self, conns: Sequence[Connection], *, ttl_s: float) -> None:
        """:meth:`register` for each of ``conns``; raises like it, registering nothing."""
        if not math.isfinite(ttl_s) or ttl_s <= 0:
            raise InvalidRequest(f"ttl_s must be a positive finite number, got {ttl_s}")
        for conn in conns:
            await self.register(conn, ttl_s=ttl_s)

    async def unregister(self, conn: Connection) -> None:
        """Forget a connection (no error if unknown).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._sweep()
        self._forget(conn)

    async def lookup(self, users: Sequence[str]) -> dict[str, list[Connection]]:
        """Live connections of many users (users with none are absent).

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        await self._sweep()
        found: dict[str, list[Connection]] = {}
        for user in users:
            conns = self._by_user.get(user)
            if conns:
                found[user] = list(conns)
        return found

    async def drop_gateway(self, gateway: str) -> None:
        """Forget every connection of a gateway. Raises ``ChatcoreClosed`` after ``aclose()``."""
        await self._sweep()
        for conn in list(self._by_gateway.get(gateway, ())):
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        conns = self._by_user.get(conn.user)
        if conns is None or conns.pop(conn, None) is None:
            return
        if not conns:
            del self._by_user[conn.user]
        held = self._by_gateway[conn.gateway]
        held.discard(conn)
        if not held:
            del self._by_gateway[conn.gateway]

    async def _sweep(self) -> float:
        await self._checkpoint()
        now = self._clock()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, conn = heapq.heappop(self._deadlines)
            if self._by_user.get(conn.user, {}).get(conn) == deadline:
                self._forget(conn)
        return now
