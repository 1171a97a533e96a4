"""In-memory ``NodeIdLease``: single process only.

Leases live in this object, so it keeps node ids apart only among generators that
share it inside one process (tests, ``chatcore serve`` on one machine). Several
processes need a shared backend (Redis).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from chatcore._memory import MemoryAdapter
from chatcore.errors import Fenced, Unavailable
from chatcore.ids._base import NodeLease, check_node_ids, lease_ttl_ms
from chatcore.ids._snowflake import MAX_NODE_ID, wall_clock_ms

__all__ = ["MemoryNodeIdLease"]


class MemoryNodeIdLease(MemoryAdapter):
    """Leases node ids from ``node_ids`` (default all 1024) by an injectable ms ``clock``.

    A free id is preferred over an expired one, and among expired ids the one that
    expired longest ago, so a stalled old holder is the least likely to clash.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], int] = wall_clock_ms,
        node_ids: range = range(MAX_NODE_ID + 1),
    ) -> None:
        self._clock = clock
        self._node_ids = check_node_ids(node_ids)
        self._leases: dict[int, NodeLease] = {}

    async def acquire(self, owner: str, *, ttl_s: float) -> NodeLease:
        """Lease a node id no live holder has; see ``NodeIdLease.acquire``."""
        ttl_ms = lease_ttl_ms(owner, ttl_s)
        await self._checkpoint()
        now = self._clock()
        node_id = self._pick_free(now)
        lease = NodeLease(
            node_id=node_id,
            owner=owner,
            token=uuid.uuid4().hex,
            ttl_ms=ttl_ms,
            expires_at_ms=now + ttl_ms,
        )
        self._leases[node_id] = lease
        return lease

    async def renew(self, lease: NodeLease) -> NodeLease:
        """Extend a live lease; raises ``Fenced`` if it was lost. See ``NodeIdLease.renew``."""
        await self._checkpoint()
        now = self._clock()
        current = self._leases.get(lease.node_id)
        if current is None or current.token != lease.token:
            raise Fenced(f"node id {lease.node_id} lease of {lease.owner!r} was released or taken")
        if current.expires_at_ms <= now:
            raise Fenced(
                f"node id {lease.node_id} lease of {lease.owner!r} expired "
                f"{now - current.expires_at_ms} ms ago"
            )
        renewed = NodeLease(
            node_id=lease.node_id,
            owner=lease.owner,
            token=lease.token,
            ttl_ms=lease.ttl_ms,
            expires_at_ms=now + lease.ttl_ms,
        )
        self._leases[lease.node_id] = renewed
        return renewed

    async def release(self, lease: NodeLease) -> None:
        """Free the node id if this lease still holds it."""
        await self._checkpoint()
        current = self._leases.get(lease.node_id)
        if current is not None and current.token == lease.token:
            del self._leases[lease.node_id]

    def _pick_free(self, now: int) -> int:
        oldest_expired: NodeLease | None = None
        for node_id in self._node_ids:
            held = self._leases.get(node_id)
            if held is None:
                return node_id
            if held.expires_at_ms <= now and (
                oldest_expired is None or held.expires_at_ms < oldest_expired.expires_at_ms
            ):
                oldest_expired = held
        if oldest_expired is None:
            raise Unavailable(
                f"all {len(self._node_ids)} node ids of {self._node_ids} are leased by live "
                "holders; retry when one expires or is released"
            )
        return oldest_expired.node_id
