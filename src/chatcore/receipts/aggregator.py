"""Message status, "read by k of N" and unread counts, derived from receipt watermarks.

Pure logic over a chat's watermarks (user → :class:`~chatcore.model.Watermarks`, as
``ReceiptStore.for_chat`` returns them; a member without an entry has zeros).

How this works: a member has received every message up to its ``delivered_seq``
and read every message up to its ``read_seq`` (``read`` implies ``delivered``, so a
stored ``delivered_seq`` below ``read_seq`` counts as ``read_seq``). The status of
a message as its sender sees it is decided by the members other than the sender
(for a direct chat: the other member): ``read`` when all of them read it,
``delivered`` when all of them received it, else ``sent``. So it depends only on the
lowest watermarks among them, found in one scan of the members; each message is
then one comparison. Counts for many messages sweep the sorted watermarks once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, NamedTuple

from chatcore.model import Watermarks

__all__ = [
    "MessageStatus",
    "ReceiptCounts",
    "receipt_counts",
    "receipt_counts_many",
    "status_of",
    "statuses",
    "unread_count",
]

MessageStatus = Literal["sent", "delivered", "read"]


class ReceiptCounts(NamedTuple):
    """How many of the ``total`` members other than the sender received and read a message."""

    delivered: int
    read: int
    total: int


class _Floor(NamedTuple):
    """The lowest effective watermarks among the members other than the sender."""

    delivered: int
    read: int


def _seqs(user: str, watermarks: Mapping[str, Watermarks]) -> tuple[int, int]:
    """A member's effective (delivered, read): zeros if unknown, read implies delivered."""
    marks = watermarks.get(user)
    if marks is None:
        return 0, 0
    return max(marks.delivered_seq, marks.read_seq), marks.read_seq


def _others(sender: str, members: Iterable[str]) -> set[str]:
    return {member for member in members if member != sender}


def _floor(
    sender: str, members: Iterable[str], watermarks: Mapping[str, Watermarks]
) -> _Floor | None:
    """None when nobody but the sender is a member."""
    floor: _Floor | None = None
    for user in _others(sender, members):
        delivered, read = _seqs(user, watermarks)
        if floor is None:
            floor = _Floor(delivered, read)
        else:
            floor = _Floor(min(floor.delivered, delivered), min(floor.read, read))
    return floor


def _check_seq(seq: int) -> None:
    if seq < 1:
        raise ValueError(f"a message seq is >= 1, got {seq}")


def _status(seq: int, floor: _Floor | None) -> MessageStatus:
    if floor is None:
        return "sent"
    if seq <= floor.read:
        return "read"
    if seq <= floor.delivered:
        return "delivered"
    return "sent"


def status_of(
    seq: int, sender: str, members: Iterable[str], watermarks: Mapping[str, Watermarks]
) -> MessageStatus:
    """The status of message ``seq`` as its ``sender`` sees it.

    For a direct chat this is the other member's receipt; in a group, ``read`` or
    ``delivered`` once every member but the sender got there. A chat with no member
    but the sender stays ``sent``. O(members). Raises ``ValueError`` if ``seq < 1``.
    """
    _check_seq(seq)
    return _status(seq, _floor(sender, members, watermarks))


def statuses(
    seqs: Iterable[int],
    sender: str,
    members: Iterable[str],
    watermarks: Mapping[str, Watermarks],
) -> list[MessageStatus]:
    """The status of each message of ``sender`` in ``seqs``, in the same order.

    Same rule as :func:`status_of`, in one scan of the members plus one pass over
    ``seqs`` (any order). Raises ``ValueError`` if a seq is below 1.
    """
    floor = _floor(sender, members, watermarks)
    result: list[MessageStatus] = []
    for seq in seqs:
        _check_seq(seq)
        result.append(_status(seq, floor))
    return result


def receipt_counts(
    seq: int, sender: str, members: Iterable[str], watermarks: Mapping[str, Watermarks]
) -> ReceiptCounts:
    """Delivered to k of N, read by k of N: message ``seq`` of ``sender`` in a group.

    N counts the distinct members other than the sender. O(members). Raises
    ``ValueError`` if ``seq < 1``.
    """
    _check_seq(seq)
    others = _others(sender, members)
    delivered = read = 0
    for user in others:
        user_delivered, user_read = _seqs(user, watermarks)
        delivered += user_delivered >= seq
        read += user_read >= seq
    return ReceiptCounts(delivered=delivered, read=read, total=len(others))


def receipt_counts_many(
    seqs: Sequence[int],
    sender: str,
    members: Iterable[str],
    watermarks: Mapping[str, Watermarks],
) -> list[ReceiptCounts]:
    """:func:`receipt_counts` for each of ``seqs`` (ascending), in one sweep.

    O(N log N + len(seqs)) for N members, instead of N per message. Raises
    ``ValueError`` if ``seqs`` is not ascending (repeats are allowed) or holds a
    seq below 1.
    """
    others = _others(sender, members)
    total = len(others)
    pairs = [_seqs(user, watermarks) for user in others]
    delivered_marks = sorted(delivered for delivered, _ in pairs)
    read_marks = sorted(read for _, read in pairs)
    below_delivered = below_read = 0  # members whose watermark is below the current seq
    previous = 0
    result: list[ReceiptCounts] = []
    for seq in seqs:
        _check_seq(seq)
        if seq < previous:
            raise ValueError(f"seqs must be ascending, got {seq} after {previous}")
        previous = seq
        while below_delivered < total and delivered_marks[below_delivered] < seq:
            below_delivered += 1
        while below_read < total and read_marks[below_read] < seq:
            below_read += 1
        result.append(ReceiptCounts(total - below_delivered, total - below_read, total))
    return result


def unread_count(last_seq: int, watermarks: Watermarks | None) -> int:
    """Messages of a chat a member has not read: ``max(0, last_seq - read_seq)``.

    ``None`` (no receipt stored yet) means nothing read.
    """
    read = 0 if watermarks is None else watermarks.read_seq
    return max(0, last_seq - read)
