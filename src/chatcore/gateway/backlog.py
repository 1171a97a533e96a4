"""The slow-consumer rule on unread bytes, sans-IO.

A client that stops reading leaves what the server sends it in two buffers: the
server's own (asyncio's write buffer) and the kernel's send queue. The I/O shell
measures both (``chatcore.server.sockets``) and feeds the sum to
:meth:`UnreadBacklog.observe` now and then; the rule says when the connection has
had more than ``max_bytes`` unread for at least ``timeout_s`` and must be closed with
4008. A reader that is only briefly behind (a burst, a sync page) drops below the
limit again and resets the clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["UnreadBacklog"]


@dataclass(slots=True)
class UnreadBacklog:
    """How long a connection's unread bytes have stayed above ``max_bytes``."""

    max_bytes: int
    """The limit (-1: none, the rule never fires)."""
    timeout_s: float
    """How long the unread bytes may stay above the limit."""
    above_since: float | None = None
    """When an observation first found the bytes above the limit (None: below)."""

    def observe(self, unread_bytes: int, now: float) -> bool:
        """Record ``unread_bytes`` at ``now``; True once they have been above the limit
        for ``timeout_s`` (at every observation since the first one above it)."""
        if self.max_bytes < 0 or unread_bytes <= self.max_bytes:
            self.above_since = None
            return False
        if self.above_since is None:
            self.above_since = now
        return now - self.above_since >= self.timeout_s
