"""The shape of an end-to-end encrypted message body, checked without any key (pure).

The body of a message sent with ``encrypted=True`` is base64url without padding of
the UTF-8 JSON object (version 1; the scheme is in docs/encryption.md)::

    {"v": 1, "device": "<sender's device>", "epk": "<32 bytes>", "iv": "<12 bytes>",
     "ct": "<ciphertext and its 16-byte tag>",
     "keys": [{"user": "bob", "device": "phone", "version": 3, "wk": "<48 bytes>"}, ...]}

every byte string itself base64url without padding. The server checks only this
shape (and the body's size, as for any message): it holds no key and never learns
the plaintext. A body that is not such an envelope is refused as ``invalid``.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.keys.rules import MAX_KEY_VERSION, PUBLIC_KEY_BYTES, decode_b64url

__all__ = [
    "ENVELOPE_VERSION",
    "IV_BYTES",
    "MAX_RECIPIENTS",
    "TAG_BYTES",
    "WRAPPED_KEY_BYTES",
    "Envelope",
    "WrappedKey",
    "decode_envelope",
    "encode_envelope",
]

ENVELOPE_VERSION = 1
IV_BYTES = 12
"""AES-GCM nonce length."""
TAG_BYTES = 16
"""AES-GCM tag length: the shortest ciphertext (an empty plaintext)."""
WRAPPED_KEY_BYTES = 48
"""A 32-byte message key sealed with AES-GCM: ciphertext and tag."""
MAX_RECIPIENTS = 1024
"""The most device keys one envelope may carry (the body's size limit usually binds first)."""

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
_B64 = Annotated[str, msgspec.Meta(max_length=1 << 20)]


class WrappedKey(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The message key sealed for one device key (``version`` of ``user``'s ``device``)."""

    user: _Name
    device: _Name
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_KEY_VERSION)]
    wk: _B64


class Envelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A decoded encrypted body; byte fields still base64url."""

    v: Literal[1]
    device: _Name
    epk: _B64
    iv: _B64
    ct: _B64
    keys: Annotated[list[WrappedKey], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]


_json_decode = msgspec.json.Decoder(Envelope).decode
_json_encode = msgspec.json.Encoder().encode


def decode_envelope(body: str) -> Envelope:
    """``body`` as an envelope; raises InvalidRequest saying what is wrong with it."""
    raw = decode_b64url(body, "an encrypted body")
    try:
        env = _json_decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"an encrypted body is not a v1 envelope: {exc}") from exc
    _exact(env.epk, PUBLIC_KEY_BYTES, "epk")
    _exact(env.iv, IV_BYTES, "iv")
    if len(decode_b64url(env.ct, "envelope ct")) < TAG_BYTES:
        raise InvalidRequest(f"envelope ct is shorter than its {TAG_BYTES}-byte tag")
    seen: set[tuple[str, str]] = set()
    for key in env.keys:
        _exact(key.wk, WRAPPED_KEY_BYTES, "wk")
        if (key.user, key.device) in seen:
            raise InvalidRequest(f"envelope names device {key.device!r} of {key.user!r} twice")
        seen.add((key.user, key.device))
    return env


def encode_envelope(env: Envelope) -> str:
    """The body that carries ``env`` (base64url JSON, no padding)."""
    return base64.urlsafe_b64encode(_json_encode(env)).decode().rstrip("=")


def _exact(text: str, size: int, what: str) -> None:
    n = len(decode_b64url(text, f"envelope {what}"))
    if n != size:
        raise InvalidRequest(f"envelope {what} must be {size} bytes, got {n}")
