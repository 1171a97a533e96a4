"""The presence rules of DESIGN.md §6 as data and pure functions (no I/O, no clock).

A device is online from a touch until ``touched + ttl`` (exclusive): heartbeats every
``heartbeat_s`` (30 s) re-touch it well inside its TTL (60 s). A user is online while
any device is. ``last_seen`` is the latest touch or leave of any of their devices, so
a user whose devices expired was last seen at their last heartbeat.

Every operation first drops the user's devices expired at ``now_ms`` and reports that
online→offline transition, then applies itself. A user's reported transitions so
always alternate, online, offline, online, ..., whichever call notices a change first.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.model import PresenceState

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_TTL_S",
    "DevicePresence",
    "PresenceRules",
    "PresenceUpdate",
    "UserPresence",
    "ttl_ms",
]

DEFAULT_TTL_S = 60.0
DEFAULT_HEARTBEAT_S = 30.0


class DevicePresence(msgspec.Struct, frozen=True):
    """One device's entry: touched at ``touched_ms``, online until ``expires_ms`` (exclusive)."""

    device: str
    touched_ms: int
    expires_ms: int

    def live(self, now_ms: int) -> bool:
        """Whether the device is still online at ``now_ms``."""
        return now_ms < self.expires_ms


class UserPresence(msgspec.Struct, frozen=True):
    """A user's device entries (expired ones stay until an operation drops them)."""

    user: str
    devices: tuple[DevicePresence, ...] = ()
    last_seen: int | None = None

    def online(self, now_ms: int) -> bool:
        """Whether any device is online at ``now_ms``."""
        return any(d.live(now_ms) for d in self.devices)

    def state(self, now_ms: int) -> PresenceState:
        """The user's presence as seen at ``now_ms``."""
        return PresenceState(self.user, self.online(now_ms), self.last_seen)


class PresenceUpdate(NamedTuple):
    """The result of one operation: the new entry and the transitions it caused, in order.

    ``went_online`` / ``went_offline`` say whether the operation itself (not the expiry
    noticed before it) took the user online / offline.
    """

    presence: UserPresence
    changes: tuple[PresenceState, ...]
    went_online: bool = False
    went_offline: bool = False


class PresenceRules:
    """Presence timings and transitions: devices live ``ttl_s`` (60) after each touch.

    ``heartbeat_s`` (30) is how often a connected device should touch; it must be
    shorter than ``ttl_s`` so that one late heartbeat does not flap the user offline.
    Raises ``InvalidRequest`` on timings that are not positive and finite or break that.
    """

    def __init__(
        self, *, ttl_s: float = DEFAULT_TTL_S, heartbeat_s: float = DEFAULT_HEARTBEAT_S
    ) -> None:
        self.ttl_ms = ttl_ms(ttl_s)
        self.heartbeat_ms = ttl_ms(heartbeat_s, name="heartbeat_s")
        if self.heartbeat_ms >= self.ttl_ms:
            raise InvalidRequest(
                f"heartbeat_s ({heartbeat_s}) must be shorter than ttl_s ({ttl_s})"
            )

    def next_heartbeat_ms(self, touched_ms: int) -> int:
        """When a device touched at ``touched_ms`` should touch again."""
        return touched_ms + self.heartbeat_ms

    def touch(
        self, presence: UserPresence, device: str, *, now_ms: int, ttl_s: float | None = None
    ) -> PresenceUpdate:
        """Mark ``device`` online until ``now + ttl`` (``ttl_s`` or the rules' TTL).

        Raises ``InvalidRequest`` if ``ttl_s`` is not positive and finite.
        """
        lifetime_ms = self.ttl_ms if ttl_s is None else ttl_ms(ttl_s)
        presence, changes = self._drop_expired(presence, now_ms)
        was_online = bool(presence.devices)
        entry = DevicePresence(device, now_ms, now_ms + lifetime_ms)
        others = tuple(d for d in presence.devices if d.device != device)
        presence = UserPresence(presence.user, (*others, entry), _later(presence.last_seen, now_ms))
        if was_online:
            return PresenceUpdate(presence, changes)
        online = PresenceState(presence.user, True, presence.last_seen)
        return PresenceUpdate(presence, (*changes, online), went_online=True)

    def leave(self, presence: UserPresence, device: str, *, now_ms: int) -> PresenceUpdate:
        """Mark ``device`` offline now; a device that is not online changes nothing."""
        presence, changes = self._drop_expired(presence, now_ms)
        others = tuple(d for d in presence.devices if d.device != device)
        if len(others) == len(presence.devices):
            return PresenceUpdate(presence, changes)
        presence = UserPresence(presence.user, others, _later(presence.last_seen, now_ms))
        if others:
            return PresenceUpdate(presence, changes)
        offline = PresenceState(presence.user, False, presence.last_seen)
        return PresenceUpdate(presence, (*changes, offline), went_offline=True)

    def expire(self, presence: UserPresence, *, now_ms: int) -> PresenceUpdate:
        """Drop the devices expired at ``now_ms``; reports the user going offline if so."""
        presence, changes = self._drop_expired(presence, now_ms)
        return PresenceUpdate(presence, changes, went_offline=bool(changes))

    @staticmethod
    def _drop_expired(
        presence: UserPresence, now_ms: int
    ) -> tuple[UserPresence, tuple[PresenceState, ...]]:
        live = tuple(d for d in presence.devices if d.live(now_ms))
        if len(live) == len(presence.devices):
            return presence, ()
        presence = UserPresence(presence.user, live, presence.last_seen)
        if live:
            return presence, ()
        return presence, (PresenceState(presence.user, False, presence.last_seen),)


def ttl_ms(ttl_s: float, *, name: str = "ttl_s") -> int:
    """``ttl_s`` seconds in whole ms (at least 1).

    Raises ``InvalidRequest`` (naming the option ``name``) unless ``ttl_s`` is positive
    and finite.
    """
    if not math.isfinite(ttl_s) or ttl_s <= 0:
        raise InvalidRequest(f"{name} must be a positive finite number of seconds, got {ttl_s}")
    return max(1, round(ttl_s * 1000))


def _later(last_seen: int | None, now_ms: int) -> int:
    return now_ms if last_seen is None else max(last_seen, now_ms)
