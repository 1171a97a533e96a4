"""Tokens: HS256 JWTs whose ``sub`` is the user id, with a required ``exp``.

The signing key comes from ``CHATCORE_SECRET``. In dev mode without it, a random key
is generated once and kept in the data folder (``secret.key``, mode 0600), so tokens
survive a restart of the dev server.

A token is checked at ``hello`` and its expiry is kept by the connection: when it
passes, the server closes the socket with 4001 ("token expired"). :meth:`TokenAuthority.revoke`
refuses every token of a user issued until then (in this process's memory);
``ChatServer.revoke_user`` also closes that user's open sockets.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import jwt

from chatcore.errors import InvalidRequest, Unauthorized
from chatcore.gateway.session import Identity

__all__ = ["TokenAuthority"]

_ALGORITHM = "HS256"


class TokenAuthority:
    """Issues and verifies user tokens with one HS256 key."""

    def __init__(self, secret: str | bytes, *, leeway_s: float = 5.0) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 32:
            raise InvalidRequest("the token secret must be at least 32 bytes")
        self._key = key
        self._leeway = leeway_s
        self._revoked: dict[str, float] = {}

    @classmethod
    def from_environment(cls, data_dir: str | Path | None, *, dev: bool) -> TokenAuthority:
        """The key of ``CHATCORE_SECRET``; in dev mode, else a key kept in ``data_dir``.

        Raises InvalidRequest outside dev mode when ``CHATCORE_SECRET`` is not set.
        """
        secret = os.environ.get("CHATCORE_SECRET")
        if secret:
            return cls(secret)
        if not dev:
            raise InvalidRequest("set CHATCORE_SECRET (32+ bytes), or run in --dev mode")
        if data_dir is None:
            return cls(secrets.token_bytes(32))
        path = Path(data_dir) / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return cls(path.read_text().strip())

    def derived_key(self, purpose: str) -> bytes:
        """A 32-byte key for another use of the same secret (HMAC-SHA256 of ``purpose``)."""
        return hmac.new(self._key, f"chatcore {purpose}".encode(), hashlib.sha256).digest()

    def issue(self, user: str, *, ttl_s: int = 24 * 3600, now: float | None = None) -> str:
        """A token for ``user`` valid for ``ttl_s`` seconds."""
        if not user:
            raise InvalidRequest("a token needs a user id")
        issued = int(time.time() if now is None else now)
        claims = {"sub": user, "iat": issued, "exp": issued + ttl_s}
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str) -> str:
        """The user id of a valid token; raises Unauthorized for any other."""
        return self.identify(token).user

    def identify(self, token: str, *, now: float | None = None) -> Identity:
        """The user of a valid token and how long it stays valid; raises Unauthorized
        for any other (expired, another key or algorithm, revoked)."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                options={"require": ["exp", "sub"]},
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        user = claims.get("sub")
        if not isinstance(user, str) or not user or len(user) > 128:
            raise Unauthorized("invalid token: bad sub")
        revoked = self._revoked.get(user)
        if revoked is not None:
            issued = claims.get("iat")
            if not isinstance(issued, int | float) or issued <= revoked:
                raise Unauthorized("token revoked")
        clock = time.time() if now is None else now
        return Identity(user, valid_for_s=float(claims["exp"]) + self._leeway - clock)

    def revoke(self, user: str, *, now: float | None = None) -> None:
        """Refuse every token of ``user`` issued until now (within the same second
        too); tokens issued later are accepted. Kept in memory, per process."""
        self._revoked[user] = time.time() if now is None else now
