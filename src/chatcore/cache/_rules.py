"""What every HotCache backend checks the same way."""

from __future__ import annotations

from chatcore.errors import InvalidRequest

__all__ = ["DEFAULT_MAX_CHATS", "DEFAULT_PER_CHAT", "check_max_chats", "check_per_chat"]

DEFAULT_PER_CHAT = 100
"""Messages a hot cache keeps per chat unless told otherwise."""


def check_per_chat(per_chat: int) -> int:
    """``per_chat`` itself; raises ``InvalidRequest`` if it is below 1."""
    if per_chat < 1:
        raise InvalidRequest(f"per_chat must be at least 1, got {per_chat}")
    return per_chat


DEFAULT_MAX_CHATS = 10_000
"""Chats an in-process hot cache keeps unless told otherwise (least recently used
dropped first): about 10 000 x 100 messages."""


def check_max_chats(max_chats: int) -> int:
    """``max_chats`` itself; raises ``InvalidRequest`` if it is below 1."""
    if max_chats < 1:
        raise InvalidRequest(f"max_chats must be at least 1, got {max_chats}")
    return max_chats
