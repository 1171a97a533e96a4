"""Short-lived download URLs that the server itself signs (for backends without presigning).

Pure: an HMAC-SHA256, keyed with a server secret, over the blob id and the expiry
time; the clock is passed in. The server hands a chat member
``/media/<id>?expires=<unix s>&sig=<hex>`` and checks it with :meth:`UrlSigner.verify`
when the URL is fetched. Whoever holds the URL can fetch the blob until it expires:
keep the lifetime short.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from chatcore.errors import InvalidRequest, Unauthorized
from chatcore.media.rules import check_blob_id

__all__ = ["DEFAULT_URL_TTL_S", "MIN_SECRET_BYTES", "SignedUrl", "UrlSigner"]

DEFAULT_URL_TTL_S = 300
"""How long a download URL lives unless told otherwise: 5 minutes."""

MIN_SECRET_BYTES = 32


class SignedUrl(msgspec.Struct, frozen=True):
    """The parts of a signed download URL."""

    blob_id: str
    expires: int
    """Unix time (s) after which the URL is refused."""
    sig: str
    """Hex HMAC-SHA256 over ``blob_id`` and ``expires``."""

    def query(self) -> str:
        """``expires=...&sig=...`` (both URL-safe as they are)."""
        return f"expires={self.expires}&sig={self.sig}"


class UrlSigner:
    """Signs and checks download URLs with one secret (at least 32 bytes, else ``InvalidRequest``).

    ``previous`` are older secrets still accepted by :meth:`verify` (rotation).
    """

    def __init__(self, secret: bytes, *, previous: tuple[bytes, ...] = ()) -> None:
        for key in (secret, *previous):
            if not isinstance(key, bytes) or len(key) < MIN_SECRET_BYTES:
                raise InvalidRequest(f"a URL signing secret needs {MIN_SECRET_BYTES}+ bytes")
        self._secret = secret
        self._keys = (secret, *previous)

    @staticmethod
    def _mac(key: bytes, blob_id: str, expires: int) -> str:
        message = f"chatcore-media-v1\n{blob_id}\n{expires}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def sign(self, blob_id: str, *, now_s: int, ttl_s: int = DEFAULT_URL_TTL_S) -> SignedUrl:
        """A URL for ``blob_id`` valid for ``ttl_s`` seconds from ``now_s``.

        ``InvalidRequest`` for a bad id or a ``ttl_s`` below 1.
        """
        check_blob_id(blob_id)
        if ttl_s < 1:
            raise InvalidRequest(f"ttl_s must be at least 1, got {ttl_s}")
        expires = now_s + ttl_s
        return SignedUrl(blob_id, expires, self._mac(self._secret, blob_id, expires))

    def verify(self, blob_id: str, expires: object, sig: object, *, now_s: int) -> None:
        """Return if the parts of a fetched URL are genuine and not expired.

        Raises ``Unauthorized`` for a forged, altered or expired URL (``expires`` and
        ``sig`` as they came in the query string, strings or not), ``InvalidRequest``
        for a bad blob id.
        """
        check_blob_id(blob_id)
        if isinstance(expires, str) and expires.isascii() and expires.isdigit():
            expires = int(expires)
        if isinstance(expires, bool) or not isinstance(expires, int) or not isinstance(sig, str):
            raise Unauthorized("a download URL without a valid signature")
        if not any(
            hmac.compare_digest(self._mac(key, blob_id, expires), sig) for key in self._keys
        ):
            raise Unauthorized("a download URL without a valid signature")
        if now_s > expires:
            raise Unauthorized("the download URL has expired")
