"""The ``HotCache`` port (last N messages per chat) and its memory backend.

Backends needing an extra library (``redis``) are imported by module name.
"""

from chatcore.cache._base import ChatBoundedCache, HotCache
from chatcore.cache._rules import DEFAULT_MAX_CHATS, DEFAULT_PER_CHAT
from chatcore.cache.memory import MemoryHotCache

__all__ = [
    "DEFAULT_MAX_CHATS",
    "DEFAULT_PER_CHAT",
    "ChatBoundedCache",
    "HotCache",
    "MemoryHotCache",
]
