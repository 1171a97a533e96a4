"""Ports of push delivery: where a user's devices are reached, and one push service's sender."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

import msgspec

from chatcore._resource import AsyncResource
from chatcore.offline._base import PushNotification

__all__ = [
    "PushKind",
    "PushOutcome",
    "PushSender",
    "PushStats",
    "PushTarget",
    "PushTokenStore",
    "WebPushKeys",
]

PushKind = Literal["webpush", "fcm", "apns"]
"""The push services a device can register with."""

PushOutcome = Literal["sent", "gone"]
"""What a push service answered: accepted, or the target no longer exists (drop it)."""


class PushStats(NamedTuple):
    """What a notifier did since it was made: pushes accepted, targets gone, failures."""

    sent: int = 0
    gone: int = 0
    failed: int = 0


class WebPushKeys(msgspec.Struct, frozen=True):
    """A Web Push subscription's keys (RFC 8291), base64url as the browser gives them."""

    p256dh: str
    auth: str


class PushTarget(msgspec.Struct, frozen=True):
    """Where one device of a user is reached.

    ``token`` is the FCM registration token, the APNs device token (hex), or the Web
    Push subscription's endpoint URL; ``keys`` are the Web Push subscription's keys
    (only for ``webpush``).
    """

    user: str
    device: str
    kind: PushKind
    token: str
    keys: WebPushKeys | None = None


class PushTokenStore(AsyncResource, Protocol):
    """The push targets of every user's devices: one per (user, device)."""

    async def register(self, target: PushTarget) -> None:
        """Keep ``target`` as the device's push target, replacing the one it had.

        Raises :class:`~chatcore.errors.InvalidRequest` for a target of the wrong
        shape or size (see :mod:`chatcore.push.targets`); nothing changes then.
        """
        ...

    async def unregister(self, user: str, device: str) -> None:
        """Forget the device's push target (fine if it has none)."""
        ...

    async def targets(self, users: Sequence[str]) -> list[PushTarget]:
        """The push targets of ``users``' devices (any order)."""
        ...

    async def drop(self, target: PushTarget) -> None:
        """Forget ``target`` because its service reported it gone.

        Only if the device still has this very target: a device that registered a new
        token meanwhile keeps it.
        """
        ...


class PushSender(AsyncResource, Protocol):
    """One push service (Web Push, FCM, APNs): sends one notification to one device."""

    kind: PushKind

    async def send(self, target: PushTarget, notification: PushNotification) -> PushOutcome:
        """Send ``notification`` to ``target`` (of this sender's ``kind``).

        Returns ``"gone"`` when the service reports the target no longer exists.
        Raises :class:`~chatcore.errors.Unavailable` when the service cannot be reached,
        times out or answers with a server error or 429, and
        :class:`~chatcore.errors.InvalidRequest` when it refuses the request otherwise
        (bad credentials or payload).
        """
        ...
