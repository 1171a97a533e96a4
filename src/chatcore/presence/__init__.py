"""Presence: the ``PresenceStore`` port, its pure rules, its memory backend and tracker.

``rules`` holds the timings and transitions (no I/O, time passed in); backends are
thin shells around them. ``tracker`` is a gateway process's side: its devices'
heartbeats and the connections watching users. Backends needing an extra library
(``redis``) are imported by module name.
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
from chatcore.presence.tracker import PresenceTracker

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_TTL_S",
    "DevicePresence",
    "MemoryPresenceStore",
    "PresenceRules",
    "PresenceStore",
    "PresenceTracker",
    "PresenceUpdate",
    "UserPresence",
]
