"""The ``NodeIdLease`` port: who may issue Snowflake ids with which node id, until when.

A process acquires a node id before it starts a :class:`~chatcore.ids.SnowflakeGenerator`,
renews the lease well before ``expires_at_ms`` (every ``ttl / 3`` is a good rhythm),
and stops issuing ids with that node id as soon as a renewal raises
:class:`~chatcore.errors.Fenced` or ``expires_at_ms`` passes without one.
"""

from __future__ import annotations

import math
from typing import Protocol

import msgspec

from chatcore._resource import AsyncResource
from chatcore.ids._snowflake import MAX_NODE_ID

__all__ = ["NodeIdLease", "NodeLease"]


class NodeLease(msgspec.Struct, frozen=True, kw_only=True):
    """One holder's right to a node id until ``expires_at_ms``."""

    node_id: int
    """The Snowflake node id, 0..1023."""
    owner: str
    """Who holds it, as given to ``acquire`` (for logs and operators)."""
    token: str
    """Opaque, unique per ``acquire``; tells this holding apart from any later one."""
    ttl_ms: int
    """The lease time asked for; ``renew`` extends by it again."""
    expires_at_ms: int
    """Unix ms, by the backend's clock, after which another owner may take the id."""


class NodeIdLease(AsyncResource, Protocol):
    """Leases Snowflake node ids so that no two live holders ever share one.

    Each ``acquire`` is a new holder, even for an owner that already holds an id.
    A lease not renewed before ``expires_at_ms`` is lost: another owner may take
    the id, and the old holder's ``renew`` raises ``Fenced``. Every method raises
    ``ChatcoreClosed`` after ``aclose()`` and ``Unavailable`` if the backend is
    down or times out.
    """

    async def acquire(self, owner: str, *, ttl_s: float) -> NodeLease:
        """Lease a node id that no live holder has.

        Raises ``Unavailable`` when every node id of the backend's range is held by
        a live lease, and ``ValueError`` for an empty ``owner`` or ``ttl_s <= 0``.
        """
        ...

    async def renew(self, lease: NodeLease) -> NodeLease:
        """Extend a live lease by its ``ttl_ms`` from now; returns the new lease.

        Raises ``Fenced`` if the lease expired, was released, or another owner took
        the id: the caller must stop issuing ids with it at once.
        """
        ...

    async def release(self, lease: NodeLease) -> None:
        """Give the node id back; does nothing if this lease no longer holds it."""
        ...


# Shared by the backends, so that they validate alike.


def check_node_ids(node_ids: range) -> range:
    """Validate a backend's ``node_ids`` option: a non-empty range within 0..1023."""
    if len(node_ids) == 0 or min(node_ids) < 0 or max(node_ids) > MAX_NODE_ID:
        raise ValueError(f"node_ids must be a non-empty range within 0..{MAX_NODE_ID}: {node_ids}")
    return node_ids


def lease_ttl_ms(owner: str, ttl_s: float) -> int:
    """Validate ``acquire`` arguments; returns the ttl in whole milliseconds, at least 1."""
    if not owner:
        raise ValueError("owner must be a non-empty string")
    if not (ttl_s > 0 and math.isfinite(ttl_s)):
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return max(1, math.ceil(ttl_s * 1000))
