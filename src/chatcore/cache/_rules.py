"""What every HotCache backend checks the same way."""

from __future__ import annotations

from chatcore.errors import InvalidRequest

__all__ = ["DEFAULT_PER_CHAT", "check_per_chat"]

DEFAULT_PER_CHAT = 100
"""Messages a hot cache keeps per chat unless told otherwise."""


def check_per_chat(per_chat: int) -> int:
    """``per_chat`` itself; raises ``InvalidRequest`` if it is below 1."""
    if per_chat < 1:
        raise InvalidRequest(f"per_chat must be at least 1, got {per_chat}")
    return per_chat
