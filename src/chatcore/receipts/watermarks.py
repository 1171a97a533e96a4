"""The one rule for moving receipt watermarks, shared by every ReceiptStore and the pipeline.

Watermarks are cumulative ("delivered up to seq 14, read up to seq 12"): they only
rise, and ``read`` implies ``delivered``, so ``delivered_seq >= read_seq`` always
holds after an update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from chatcore.model import Watermarks

__all__ = ["advance", "advance_all", "merge"]

Member = tuple[str, str]
"""(chat_id, user): whose watermarks."""


def advance(
    current: Watermarks,
    *,
    delivered_seq: int = 0,
    read_seq: int = 0,
    now_ms: int,
    last_seq: int | None = None,
) -> Watermarks | None:
    """The watermarks after a receipt, or None when the receipt changes nothing.

    Each watermark becomes the highest of its current value and the new one; the
    delivered watermark is also raised to the read one. ``updated_ms`` becomes
    ``now_ms`` on a change. With ``last_seq`` (the chat's highest seq) given, the
    receipt's seqs are first capped to it, so a client cannot mark messages that
    do not exist yet as read; watermarks already above it are left as they are.
    Raises ``ValueError`` if a seq or ``last_seq`` is negative.
    """
    if delivered_seq < 0 or read_seq < 0:
        raise ValueError(f"seqs must be >= 0, got delivered={delivered_seq} read={read_seq}")
    if last_seq is not None:
        if last_seq < 0:
            raise ValueError(f"last_seq must be >= 0, got {last_seq}")
        delivered_seq = min(delivered_seq, last_seq)
        read_seq = min(read_seq, last_seq)
    new_read = max(current.read_seq, read_seq)
    new_delivered = max(current.delivered_seq, delivered_seq, new_read)
    if new_read == current.read_seq and new_delivered == current.delivered_seq:
        return None
    return msgspec.structs.replace(
        current, delivered_seq=new_delivered, read_seq=new_read, updated_ms=now_ms
    )


def merge(a: Watermarks, b: Watermarks) -> Watermarks:
    """Two copies of one member's watermarks joined: the highest of each field.

    Order-free (commutative, associative, idempotent), so replicas that saw receipts
    in different orders agree once merged. Raises ``ValueError`` if ``a`` and ``b``
    belong to different chats or users.
    """
    if (a.chat_id, a.user) != (b.chat_id, b.user):
        raise ValueError(
            f"cannot merge watermarks of {a.chat_id!r}/{a.user!r} with {b.chat_id!r}/{b.user!r}"
        )
    read = max(a.read_seq, b.read_seq)
    return Watermarks(
        chat_id=a.chat_id,
        user=a.user,
        delivered_seq=max(a.delivered_seq, b.delivered_seq, read),
        read_seq=read,
        updated_ms=max(a.updated_ms, b.updated_ms),
    )


def advance_all(
    current: Mapping[Member, Watermarks], targets: Sequence[Watermarks]
) -> tuple[list[Watermarks | None], dict[Member, Watermarks]]:
    """Apply ``targets`` in order, each as :func:`advance` with its ``updated_ms`` as
    ``now_ms``, to the members' ``current`` watermarks (zeros for a member missing).

    Returns, per target, the watermarks after it or None if it moved nothing, and the
    final watermarks of every member that moved. Raises ``ValueError`` (before
    anything is applied) if a target's seq is negative.
    """
    for t in targets:
        if t.delivered_seq < 0 or t.read_seq < 0:
            raise ValueError(
                f"seqs must be >= 0, got delivered={t.delivered_seq} read={t.read_seq}"
            )
    state = dict(current)
    moved: dict[Member, Watermarks] = {}
    results: list[Watermarks | None] = []
    for t in targets:
        key = (t.chat_id, t.user)
        before = state.get(key) or Watermarks(t.chat_id, t.user)
        after = advance(
            before, delivered_seq=t.delivered_seq, read_seq=t.read_seq, now_ms=t.updated_ms
        )
        results.append(after)
        if after is not None:
            state[key] = moved[key] = after
    return results, moved
