"""Encrypted bodies of the right shape for tests that need no real encryption."""

from __future__ import annotations

import base64
import hashlib

from chatcore.e2ee import Envelope, WrappedKey, encode_envelope


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def shaped_envelope(tag: str, *, recipients: tuple[tuple[str, str], ...] = (("bob", "d1"),)) -> str:
    """A v1 envelope whose bytes derive from ``tag`` (no key opens it)."""
    seed = hashlib.sha256(tag.encode()).digest()
    keys = [WrappedKey(user, device, 1, _b64((seed * 2)[:48])) for user, device in recipients]
    return encode_envelope(Envelope(1, "d0", _b64(seed), _b64(seed[:12]), _b64(seed), keys))
