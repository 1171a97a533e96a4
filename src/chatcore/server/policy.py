"""The server's web-facing rules: which browser origins may open ``/ws``, the
security headers of every HTTP response, and the dev login's checks.

Pure functions and one ASGI middleware; ``chatcore.server.app`` applies them. What
they decide is listed in docs/server.md ("Security").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "dev_user_name",
    "is_loopback_host",
    "origin_allowed",
]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; "
        b"img-src 'self' data: blob: https:; media-src 'self' blob: https:; "
        b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
"""Added to every HTTP response of the server (not to ``/ws``)."""


def origin_allowed(origin: str | None, host: str | None, allowed: Iterable[str] | None) -> bool:
    """Whether a WebSocket handshake with this ``Origin`` may proceed.

    No ``Origin`` (not a browser: the SDK, a bot) is allowed: the token in ``hello``
    is what authenticates. A browser's ``Origin`` is allowed when its host and port
    are the request's ``Host`` (same origin), or when it equals one entry of
    ``allowed`` exactly (scheme, host and port; ``"*"`` allows any origin).
    """
    if origin is None:
        return True
    if allowed is not None:
        entries = list(allowed)
        if "*" in entries or origin in entries:
            return True
    if host is None or origin == "null":
        return False
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or "/" in rest:
        return False
    return _netloc(rest, scheme) == _netloc(host.lower(), scheme)


def _netloc(value: str, scheme: str) -> str:
    """``host:port`` with the scheme's default port made explicit."""
    value = value.lower()
    if value.endswith("]") or ":" not in value.rsplit("]", 1)[-1]:
        return f"{value}:{443 if scheme == 'https' else 80}"
    return value


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$")


def is_loopback_host(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback interface
    (``localhost``, ``127.0.0.1`` or ``[::1]``, with any port): a DNS-rebinding page
    sends its own name instead."""
    if not host:
        return False
    match = _HOST_PORT.match(host.strip().lower())
    return match is not None and match.group(1) in _LOOPBACK_NAMES


_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def dev_user_name(value: object) -> str | None:
    """The user name of a dev login, or None when ``value`` is not one: a string of
    1-64 letters, digits, ``.``, ``_``, ``@`` or ``-``, starting with a letter or digit."""
    if not isinstance(value, str):
        return None
    name = value.strip()
    return name if _USER_NAME.match(name) else None


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [h for h in SECURITY_HEADERS if h[0] not in present]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
