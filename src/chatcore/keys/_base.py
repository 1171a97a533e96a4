"""The port of the end-to-end encryption key directory: each device's public key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from chatcore._resource import AsyncResource

__all__ = ["DeviceKey", "KeyDirectory"]


class DeviceKey(msgspec.Struct, frozen=True):
    """The public key one device of a user published.

    ``public_key``: an X25519 public key, its 32 raw bytes in base64url without
    padding; ``version``: 1 for the device's first key, higher for each rotation.
    """

    user: str
    device: str
    version: int
    public_key: str


class KeyDirectory(AsyncResource, Protocol):
    """The current public key of every user's devices: one per (user, device).

    Only the newest version of a device's key is kept; the server never sees a
    private key. See docs/encryption.md.
    """

    async def publish(self, key: DeviceKey) -> bool:
        """Keep ``key`` as its device's current key; True if it changed anything.

        Publishing the device's current version and key again changes nothing (False).
        Raises :class:`~chatcore.errors.InvalidRequest` for a key of the wrong shape, a
        version not above the device's current one (stale) or the same version with
        another key, and a new device past the user's limit of devices
        (:mod:`chatcore.keys.rules`); nothing changes then.
        """
        ...

    async def keys(self, users: Sequence[str]) -> list[DeviceKey]:
        """The current keys of ``users``' devices (any order)."""
        ...

    async def revoke(self, user: str, device: str) -> bool:
        """Forget the device's key; True if it had one."""
        ...
