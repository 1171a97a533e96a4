"""The rules of the key directory, pure: every backend checks a publish with them.

- ``user`` and ``device``: 1 to 128 characters (the wire's id limit).
- ``public_key``: an X25519 public key, 32 raw bytes, in base64url without padding
  (43 characters).
- ``version``: 1 to 2**53 - 1 (a JavaScript safe integer), and above the device's
  current version: publishing a higher version is a rotation; the current version
  with the same key again is a no-op; anything else is stale and refused.
- At most ``max_devices_per_user`` devices of a user hold a key; a new device past it
  is refused (revoke one first), never one silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import re

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.keys._base import DeviceKey

__all__ = [
    "MAX_KEY_VERSION",
    "PUBLIC_KEY_BYTES",
    "KeyRules",
    "check_key",
    "check_publish",
    "decode_b64url",
]

PUBLIC_KEY_BYTES = 32
"""Length of a raw X25519 public key."""
MAX_KEY_VERSION = 2**53 - 1
"""The highest key version (JavaScript's largest safe integer)."""
_NAME_MAX = 128
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class KeyRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a key directory accepts.

    - ``max_devices_per_user`` (16): the most devices of one user with a published key.
    """

    max_devices_per_user: int = 16

    def __post_init__(self) -> None:
        if self.max_devices_per_user < 1:
            raise InvalidRequest(
                f"max_devices_per_user must be at least 1, got {self.max_devices_per_user}"
            )


def decode_b64url(text: str, what: str) -> bytes:
    """``text`` as base64url without padding; raises InvalidRequest naming ``what``."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidRequest(f"{what} is not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the pattern rules it out
        raise InvalidRequest(f"{what} is not base64url: {exc}") from exc


def check_key(key: DeviceKey) -> None:
    """Raise InvalidRequest unless ``key`` has the shape of a device key."""
    for what, name in (("user", key.user), ("device", key.device)):
        if not 1 <= len(name) <= _NAME_MAX:
            raise InvalidRequest(f"key {what} must be 1 to {_NAME_MAX} characters")
    if isinstance(key.version, bool) or not 1 <= key.version <= MAX_KEY_VERSION:
        raise InvalidRequest(f"key version must be 1 to {MAX_KEY_VERSION}, got {key.version}")
    raw = decode_b64url(key.public_key, "public_key")
    if len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidRequest(
            f"public_key must be a raw X25519 key of {PUBLIC_KEY_BYTES} bytes, got {len(raw)}"
        )


def check_publish(key: DeviceKey, current: DeviceKey | None, devices: int, rules: KeyRules) -> bool:
    """Whether publishing ``key`` changes the directory (False: the same key again).

    ``current``: the device's key now (None: it has none); ``devices``: how many of the
    user's devices hold a key now. Raises InvalidRequest for a bad shape, a stale
    version, and a new device past ``rules.max_devices_per_user``.
    """
    check_key(key)
    if current is None:
        if devices >= rules.max_devices_per_user:
            raise InvalidRequest(
                f"user {key.user!r} has keys for {devices} devices, the most allowed "
                f"({rules.max_devices_per_user}); revoke one first"
            )
        return True
    if key.version == current.version and key.public_key == current.public_key:
        return False
    if key.version <= current.version:
        raise InvalidRequest(
            f"stale key version {key.version} for device {key.device!r}: its current version "
            f"is {current.version}; publish a higher version to rotate"
        )
    return True
