"""Presence: the ``PresenceStore`` port, its pure rules and its memory backend.

``rules`` holds the timings and transitions (no I/O, time passed in); backends are
thin shells around them. Backends needing an extra library (``redis``) are imported
by module name.
"""

from chatcore.presence._base import PresenceStore
from chatcore.presence.memory import MemoryPresenceStore
from chatcore.presence.rules import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_TTL_S,
    DevicePresence,
    PresenceRules,
    PresenceUpdate,
    UserPresence,
)

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_TTL_S",
    "DevicePresence",
    "MemoryPresenceStore",
    "PresenceRules",
    "PresenceStore",
    "PresenceUpdate",
    "UserPresence",
]
