"""Who gets a sequenced message, grouped by the gateway that holds each connection.

Pure logic: members and their live connections in, a :class:`FanoutPlan` out.

How this works:

- Targets are every live connection of every member, the sender's own devices
  included (PROTOCOL.md: "every device of every member, the sender's included").
  A connection belongs to the user named in ``Connection.user``; connections of
  users who are not members are ignored, and a ``conn_id`` listed twice counts once.
- Targets are sorted by ``(gateway, user, device, conn_id)`` and grouped by gateway.
  A chat of at most ``sync_threshold`` members gets one batch per gateway
  ("sync" mode). A larger chat gets each gateway's targets cut into batches of at
  most ``batch_size`` connections ("batched" mode), so no single payload grows with
  the group and a deliverer can interleave other chats between batches.
- Members with no live connection are ``offline`` (for the offline index and the
  push notifier), except the sender, who needs no push for their own message.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import groupby
from typing import Literal

import msgspec

from chatcore.model import Connection

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SYNC_THRESHOLD",
    "FanoutMode",
    "FanoutPlan",
    "FanoutPlanner",
    "GatewayBatch",
]

DEFAULT_SYNC_THRESHOLD = 32
"""Chats with up to this many members get one batch per gateway."""
DEFAULT_BATCH_SIZE = 64
"""Most connections in one batch of a larger chat."""

FanoutMode = Literal["sync", "batched"]


class GatewayBatch(msgspec.Struct, frozen=True):
    """Connections held by one gateway that get the message in one publish."""

    gateway: str
    conns: tuple[Connection, ...]


class FanoutPlan(msgspec.Struct, frozen=True):
    """The targets of one message: batches per gateway, and who is offline."""

    mode: FanoutMode
    batches: list[GatewayBatch]
    """Ordered by gateway; within a gateway, connections by (user, device, conn_id)."""
    offline: tuple[str, ...]
    """Members other than the sender with no live connection, sorted."""
    online_users: tuple[str, ...]
    """Members with at least one live connection (the sender included), sorted."""

    @property
    def targets(self) -> tuple[Connection, ...]:
        """Every target connection, in batch order."""
        return tuple(conn for batch in self.batches for conn in batch.conns)

    @property
    def gateways(self) -> tuple[str, ...]:
        """The gateways that get at least one batch, sorted."""
        return tuple(dict.fromkeys(batch.gateway for batch in self.batches))


def _target_order(conn: Connection) -> tuple[str, str, str, str]:
    return (conn.gateway, conn.user, conn.device, conn.conn_id)


class FanoutPlanner:
    """Plans the delivery of a message to the live connections of a chat's members.

    Options (keyword-only):

    - ``sync_threshold`` (default 32): chats with at most this many distinct
      members get one batch per gateway, whatever its size; larger chats are batched.
    - ``batch_size`` (default 64): in batched mode, the most connections in one
      batch; a gateway holding more targets gets several batches.

    Raises ``ValueError`` if ``sync_threshold`` is negative or ``batch_size`` is below 1.
    """

    def __init__(
        self,
        *,
        sync_threshold: int = DEFAULT_SYNC_THRESHOLD,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if sync_threshold < 0:
            raise ValueError(f"sync_threshold must be >= 0, got {sync_threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sync_threshold = sync_threshold
        self.batch_size = batch_size

    def mode_for(self, member_count: int) -> FanoutMode:
        """The mode used for a chat of ``member_count`` distinct members."""
        return "sync" if member_count <= self.sync_threshold else "batched"

    def plan(
        self,
        members: Iterable[str],
        connections: Mapping[str, Sequence[Connection]],
        *,
        sender: str | None = None,
    ) -> FanoutPlan:
        """Plan one message for ``members`` given their live ``connections``.

        ``connections`` is what ``ConnectionRegistry.lookup`` returns (user → live
        connections; users with none may be absent). ``sender`` only keeps the
        sender out of ``offline``; their devices are targets like anyone's.
        """
        member_set = set(members)
        live = sorted(
            (conn for conns in connections.values() for conn in conns if conn.user in member_set),
            key=_target_order,
        )
        seen_conn_ids: set[str] = set()
        targets: list[Connection] = []
        for conn in live:
            if conn.conn_id not in seen_conn_ids:
                seen_conn_ids.add(conn.conn_id)
                targets.append(conn)

        online = {conn.user for conn in targets}
        offline = member_set - online
        if sender is not None:
            offline.discard(sender)
        mode = self.mode_for(len(member_set))
        return FanoutPlan(
            mode=mode,
            batches=self._batches(targets, mode),
            offline=tuple(sorted(offline)),
            online_users=tuple(sorted(online)),
        )

    def _batches(self, targets: list[Connection], mode: FanoutMode) -> list[GatewayBatch]:
        batches: list[GatewayBatch] = []
        for gateway, group in groupby(targets, key=lambda conn: conn.gateway):
            conns = tuple(group)
            step = len(conns) if mode == "sync" else self.batch_size
            batches.extend(
                GatewayBatch(gateway, conns[start : start + step])
                for start in range(0, len(conns), step)
            )
        return batches
