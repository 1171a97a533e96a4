"""The shape and size rules of push targets, pure: a store checks every target it registers.

- ``user`` and ``device``: 1 to 256 characters.
- ``webpush``: ``token`` is the subscription's endpoint, an ``https://`` URL with a
  host (``http://`` only with ``allow_http_endpoints``, for a local push service) of
  at most 2048 characters, whose host is one of ``webpush_hosts`` (the browsers'
  push services by default) and not ``localhost`` or a loopback, private, link-local
  or otherwise non-public IP address (unless ``allow_private_endpoints``): the server
  POSTs to that URL, so it must not reach inside your network; ``keys.p256dh`` is a
  base64url uncompressed P-256 point (65 bytes, starting 0x04) and ``keys.auth`` a
  base64url 16-byte secret.
- ``fcm``: ``token`` is 1 to 4096 characters of ``A-Z a-z 0-9 - _ : .``; no keys.
- ``apns``: ``token`` is 64 to 200 hex digits, an even count; no keys.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from urllib.parse import urlsplit

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.push._base import PushTarget

__all__ = ["WEBPUSH_SERVICES", "TargetRules", "check_target"]

WEBPUSH_SERVICES: tuple[str, ...] = (
    "fcm.googleapis.com",  # Chrome, Edge on Android, Opera, Samsung Internet
    "updates.push.services.mozilla.com",  # Firefox
    "*.push.apple.com",  # Safari
    "*.notify.windows.com",  # Edge on Windows
)
"""The push services of the major browsers: the default ``TargetRules.webpush_hosts``."""

_NAME_MAX = 256
_ENDPOINT_MAX = 2048
_FCM_TOKEN = re.compile(r"[A-Za-z0-9_:.\-]{1,4096}")
_APNS_TOKEN = re.compile(r"(?:[0-9A-Fa-f]{2}){32,100}")


class TargetRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a store accepts.

    - ``max_devices_per_user`` (10): registering one more forgets the user's target
      registered longest ago.
    - ``allow_http_endpoints`` (False): accept ``http://`` Web Push endpoints (tests and
      a push service on the same host only: real push services are HTTPS).
    - ``webpush_hosts`` (:data:`WEBPUSH_SERVICES`): the hosts a Web Push endpoint may
      name, each exact or ``*.suffix`` (any subdomain); ``("*",)`` accepts any host.
    - ``allow_private_endpoints`` (False): accept ``localhost`` and loopback, private,
      link-local or reserved IP addresses as a Web Push endpoint's host (tests only).
    """

    max_devices_per_user: int = 10
    allow_http_endpoints: bool = False
    webpush_hosts: tuple[str, ...] = WEBPUSH_SERVICES
    allow_private_endpoints: bool = False

    def __post_init__(self) -> None:
        if self.max_devices_per_user < 1:
            raise InvalidRequest(
                f"max_devices_per_user must be at least 1, got {self.max_devices_per_user}"
            )


def check_target(target: PushTarget, rules: TargetRules) -> None:
    """Raise ``InvalidRequest`` naming what is wrong with ``target``; return if it is fine."""
    for field, value in (("user", target.user), ("device", target.device)):
        if not 0 < len(value) <= _NAME_MAX:
            raise InvalidRequest(f"a push target's {field} must be 1 to {_NAME_MAX} characters")
    match target.kind:
        case "webpush":
            _check_endpoint(target.token, rules)
            if target.keys is None:
                raise InvalidRequest("a webpush target needs keys (p256dh and auth)")
            p256dh = _b64url("keys.p256dh", target.keys.p256dh, 88)
            if len(p256dh) != 65 or p256dh[0] != 4:
                raise InvalidRequest("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
            if len(_b64url("keys.auth", target.keys.auth, 24)) != 16:
                raise InvalidRequest("keys.auth must be 16 bytes")
        case "fcm":
            if not _FCM_TOKEN.fullmatch(target.token):
                raise InvalidRequest("an fcm token is 1 to 4096 characters of A-Z a-z 0-9 - _ : .")
            _no_keys(target)
        case "apns":
            if not _APNS_TOKEN.fullmatch(target.token):
                raise InvalidRequest("an apns device token is 64 to 200 hex digits (even count)")
            _no_keys(target)
        case _:
            raise InvalidRequest(f"unknown push kind {target.kind!r}")


def _check_endpoint(endpoint: str, rules: TargetRules) -> None:
    if len(endpoint) > _ENDPOINT_MAX:
        raise InvalidRequest(f"a webpush endpoint is at most {_ENDPOINT_MAX} characters")
    try:
        url = urlsplit(endpoint)
        host = url.hostname
        url.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise InvalidRequest("a webpush endpoint must be a URL") from exc
    schemes = ("https", "http") if rules.allow_http_endpoints else ("https",)
    if url.scheme not in schemes or not host or url.username or url.password:
        raise InvalidRequest(
            f"a webpush endpoint must be an {' or '.join(schemes)} URL with a host, no user"
        )
    host = host.rstrip(".").lower()
    if not rules.allow_private_endpoints and _private(host):
        raise InvalidRequest(f"a webpush endpoint may not name a private address ({host})")
    if not any(_host_matches(host, pattern) for pattern in rules.webpush_hosts):
        raise InvalidRequest(
            f"{host} is not an allowed web push service (TargetRules.webpush_hosts)"
        )


def _private(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name: the allowlist decides
    return not address.is_global


def _host_matches(host: str, pattern: str) -> bool:
    pattern = pattern.lower()
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _b64url(field: str, value: str, max_chars: int) -> bytes:
    if len(value) > max_chars:
        raise InvalidRequest(f"{field} is too long")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{field} must be base64url") from exc


def _no_keys(target: PushTarget) -> None:
    if target.keys is not None:
        raise InvalidRequest(f"an {target.kind} target has no keys")
