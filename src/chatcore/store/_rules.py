"""The rules every store backend shares: valid messages and ranges, watermarks, member lists.

Pure functions, no I/O: the memory, SQLite and Cassandra stores apply them so that
they all behave alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from chatcore.errors import InvalidRequest
from chatcore.model import StoredMessage, Watermarks
from chatcore.receipts.watermarks import Member, advance, advance_all

__all__ = [
    "advanced_all",
    "advanced_watermarks",
    "changed_members",
    "check_limit",
    "check_messages",
    "unique",
]


def check_messages(messages: Sequence[StoredMessage]) -> None:
    """Raise InvalidRequest if a message has a seq below 1."""
    for m in messages:
        if m.seq < 1:
            raise InvalidRequest(f"message seq must be >= 1, got {m.seq} in chat {m.chat_id!r}")


def check_limit(limit: int) -> None:
    """Raise InvalidRequest for a negative range limit."""
    if limit < 0:
        raise InvalidRequest(f"range limit must be >= 0, got {limit}")


def advanced_watermarks(
    current: Watermarks, *, delivered_seq: int, read_seq: int, now_ms: int
) -> Watermarks:
    """``current`` raised by :func:`chatcore.receipts.watermarks.advance`; itself if unchanged.

    Raises InvalidRequest for a negative seq.
    """
    try:
        after = advance(current, delivered_seq=delivered_seq, read_seq=read_seq, now_ms=now_ms)
    except ValueError as exc:
        raise InvalidRequest(f"receipt {exc}") from exc
    return current if after is None else after


def advanced_all(
    current: Mapping[Member, Watermarks], targets: Sequence[Watermarks]
) -> tuple[list[Watermarks | None], dict[Member, Watermarks]]:
    """:func:`chatcore.receipts.watermarks.advance_all`; InvalidRequest for a bad seq."""
    try:
        return advance_all(current, targets)
    except ValueError as exc:
        raise InvalidRequest(f"receipt {exc}") from exc


def unique(users: Iterable[str]) -> tuple[str, ...]:
    """``users`` without repeats, first occurrence kept, order kept."""
    return tuple(dict.fromkeys(users))


def changed_members(
    members: Sequence[str], *, add: Sequence[str], remove: Sequence[str]
) -> tuple[str, ...]:
    """``members`` with ``add`` appended (new ones only), then ``remove`` taken out."""
    removed = set(remove)
    return tuple(u for u in unique([*members, *add]) if u not in removed)
