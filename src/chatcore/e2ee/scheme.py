"""The end-to-end encryption scheme v1: X25519 + HKDF-SHA256 + AES-256-GCM.

How this works (docs/encryption.md is the reference; the browser page does the same
with WebCrypto):

* Each device holds X25519 key pairs (a :class:`DeviceKeyring`, one per version) and
  publishes the newest public key in the server's key directory.
* To send, a client draws a random 32-byte message key ``K`` and 12-byte ``iv`` and
  seals the UTF-8 text: ``ct = AES-256-GCM(K, iv, text, aad)`` where ``aad`` binds the
  chat, the sender and the sender's device (``lp`` is a 4-byte big-endian length and
  the UTF-8 bytes)::

      aad = lp("chatcore-e2ee/1") || lp(chat) || lp(sender) || lp(sender_device)

* It draws one ephemeral X25519 key pair ``(e, epk)`` per message and, for every
  recipient device key ``P`` (every device of every member, its own user's included),
  wraps ``K``::

      kek = HKDF-SHA256(ikm=X25519(e, P), salt=epk || P,
                        info=lp("chatcore-e2ee/1 wrap") || lp(user) || lp(device), 32)
      wk  = AES-256-GCM(kek, iv=12 zero bytes, K)      # 48 bytes

  A zero nonce is safe: each ``kek`` comes from a fresh ephemeral key and seals one
  value once.
* The body is the envelope of :mod:`chatcore.e2ee.envelope`.

Needs the ``e2ee`` extra (``cryptography``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from chatcore._extras import missing_extra
from chatcore.e2ee.envelope import (
    IV_BYTES,
    Envelope,
    WrappedKey,
    decode_envelope,
    encode_envelope,
)
from chatcore.errors import InvalidRequest
from chatcore.keys._base import DeviceKey
from chatcore.keys.rules import check_key, decode_b64url

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("e2ee", exc, needed_by="chatcore.e2ee.scheme") from exc

__all__ = ["DeviceKeyring", "decrypt", "encrypt", "fingerprint"]

_LABEL = "chatcore-e2ee/1"
_WRAP_LABEL = "chatcore-e2ee/1 wrap"
_ZERO_IV = bytes(IV_BYTES)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _lp(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _kek(shared: bytes, epk: bytes, public: bytes, user: str, device: str) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=epk + public,
        info=_lp(_WRAP_LABEL, user, device),
    )
    return hkdf.derive(shared)


def _aad(chat: str, sender: str, sender_device: str) -> bytes:
    return _lp(_LABEL, chat, sender, sender_device)


def fingerprint(public_key: str) -> str:
    """A short form of a public key for people to compare (SHA-256, 8 groups of 4 hex)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(decode_b64url(public_key, "public_key"))
    hexed = digest.finalize()[:16].hex()
    return " ".join(hexed[i : i + 4] for i in range(0, 32, 4))


@dataclass
class DeviceKeyring:
    """One device's X25519 key pairs by version; the highest is the one published.

    Older versions are kept so that messages sealed for them still open. Persist it
    with :meth:`save` (a file only this user can read) and :meth:`load`.
    """

    device: str
    pairs: dict[int, X25519PrivateKey] = field(default_factory=dict)

    @classmethod
    def generate(cls, device: str, *, version: int = 1) -> DeviceKeyring:
        """A keyring with one new key pair of ``version``."""
        return cls(device, {version: X25519PrivateKey.generate()})

    @classmethod
    def load(cls, path: str | Path) -> DeviceKeyring:
        """Read a keyring :meth:`save` wrote; raises InvalidRequest for a bad file."""
        try:
            data = json.loads(Path(path).read_text())
            pairs = {
                int(v): X25519PrivateKey.from_private_bytes(decode_b64url(k, "private key"))
                for v, k in data["keys"].items()
            }
            return cls(str(data["device"]), pairs)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidRequest(f"cannot read the keyring {path}: {exc}") from exc

    def save(self, path: str | Path) -> None:
        """Write the keyring to ``path`` (mode 0600, replaced atomically)."""
        raw = {
            str(v): _b64(
                k.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            )
            for v, k in self.pairs.items()
        }
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"device": self.device, "keys": raw}, f)
        os.replace(tmp, target)

    @property
    def version(self) -> int:
        """The current (highest) version."""
        return max(self.pairs)

    @property
    def public_key(self) -> str:
        """The current public key, as published (base64url, 32 bytes)."""
        return _b64(_raw_public(self.pairs[self.version].public_key()))

    def rotate(self) -> int:
        """Add a new key pair one version above the current one; returns its version."""
        version = self.version + 1
        self.pairs[version] = X25519PrivateKey.generate()
        return version


def encrypt(
    text: str,
    *,
    chat: str,
    sender: str,
    sender_device: str,
    recipients: Iterable[DeviceKey],
) -> str:
    """The encrypted body of ``text`` for every key of ``recipients``.

    Raises InvalidRequest for a recipient key of the wrong shape, or none at all.
    """
    message_key = AESGCM.generate_key(bit_length=256)
    iv = secrets.token_bytes(IV_BYTES)
    ct = AESGCM(message_key).encrypt(iv, text.encode(), _aad(chat, sender, sender_device))
    ephemeral = X25519PrivateKey.generate()
    epk = _raw_public(ephemeral.public_key())
    wrapped: list[WrappedKey] = []
    for key in recipients:
        check_key(key)
        public = decode_b64url(key.public_key, "public_key")
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
        kek = _kek(shared, epk, public, key.user, key.device)
        wk = AESGCM(kek).encrypt(_ZERO_IV, message_key, None)
        wrapped.append(WrappedKey(key.user, key.device, key.version, _b64(wk)))
    if not wrapped:
        raise InvalidRequest("no device key to encrypt for")
    env = Envelope(1, sender_device, _b64(epk), _b64(iv), _b64(ct), wrapped)
    return encode_envelope(env)


def decrypt(body: str, *, chat: str, sender: str, user: str, keyring: DeviceKeyring) -> str:
    """The text of an encrypted ``body`` ``sender`` sent in ``chat``, opened by ``user``'s
    device that holds ``keyring``.

    Raises InvalidRequest when the body is not an envelope, holds no key for this
    device (or for a version the keyring lacks), or fails to authenticate.
    """
    env = decode_envelope(body)
    mine = next((k for k in env.keys if k.user == user and k.device == keyring.device), None)
    if mine is None:
        raise InvalidRequest(f"the message was not encrypted for device {keyring.device!r}")
    private = keyring.pairs.get(mine.version)
    if private is None:
        raise InvalidRequest(f"the message was encrypted for key version {mine.version}, not held")
    epk = decode_b64url(env.epk, "epk")
    public = _raw_public(private.public_key())
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(epk))
        kek = _kek(shared, epk, public, user, keyring.device)
        message_key = AESGCM(kek).decrypt(_ZERO_IV, decode_b64url(mine.wk, "wk"), None)
        iv, ct = decode_b64url(env.iv, "iv"), decode_b64url(env.ct, "ct")
        plain = AESGCM(message_key).decrypt(iv, ct, _aad(chat, sender, env.device))
        return plain.decode()
    except (InvalidTag, ValueError) as exc:
        raise InvalidRequest("the encrypted message does not authenticate") from exc
