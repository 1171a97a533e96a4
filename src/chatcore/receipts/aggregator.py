"""What the pipeline derives from a member's receipt watermarks: the unread count.

Pure logic. A member has read every message up to its ``read_seq``, so the messages
of a chat it has not read are those after it, up to the chat's last seq. (Message
ticks and "read by k of N" are derived by clients from the watermarks the server
sends them; see docs/decisions.md.)
"""

from __future__ import annotations

from chatcore.model import Watermarks

__all__ = ["unread_count"]


def unread_count(last_seq: int, watermarks: Watermarks | None) -> int:
    """Messages of a chat a member has not read: ``max(0, last_seq - read_seq)``.

    ``None`` (no receipt stored yet) means nothing read.
    """
    read = 0 if watermarks is None else watermarks.read_seq
    return max(0, last_seq - read)
