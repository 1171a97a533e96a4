"""The webhook signature, pure: HMAC-SHA256 over the timestamp and the body.

A request carries the header ``Chatcore-Signature: t=<unix seconds>,v1=<hex>`` where
``<hex>`` is ``HMAC-SHA256(secret, f"{t}." + body)`` in lowercase hex. A receiver
recomputes it over the raw body, compares in constant time, and refuses a timestamp
further than its tolerance from its own clock (a replayed request): that is
:func:`verify_webhook`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from chatcore.errors import InvalidRequest, Unauthorized

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "MIN_SECRET_BYTES",
    "SIGNATURE_HEADER",
    "sign_webhook",
    "verify_webhook",
]

SIGNATURE_HEADER = "Chatcore-Signature"
DEFAULT_TOLERANCE_S = 300
MIN_SECRET_BYTES = 16


def sign_webhook(secret: str | bytes, body: bytes, *, timestamp: int) -> str:
    """The ``Chatcore-Signature`` value for ``body`` sent at ``timestamp`` (unix seconds).

    Raises ``InvalidRequest`` for a secret shorter than 16 bytes.
    """
    return f"t={timestamp},v1={_mac(_secret(secret), body, timestamp)}"


def verify_webhook(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received webhook: returns if it is genuine and fresh.

    ``headers`` are the request's (any case); ``body`` its raw bytes; ``now_s`` the
    receiver's clock (``time.time()``). Raises ``Unauthorized`` for a missing, malformed
    or wrong signature, or a timestamp more than ``tolerance_s`` from ``now_s``.
    """
    key = _secret(secret)
    value = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    if value is None:
        raise Unauthorized(f"no {SIGNATURE_HEADER} header")
    fields: dict[str, list[str]] = {}
    for part in value.split(","):
        name, _, field = part.strip().partition("=")
        fields.setdefault(name, []).append(field)
    try:
        [stamp] = fields.get("t", [])
        timestamp = int(stamp)
    except ValueError as exc:
        raise Unauthorized(f"{SIGNATURE_HEADER} has no single integer t=") from exc
    if abs(now_s - timestamp) > tolerance_s:
        raise Unauthorized(f"webhook timestamp {timestamp} is outside the tolerance")
    expected = _mac(key, body, timestamp)
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        raise Unauthorized("webhook signature does not match")


def _secret(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidRequest(f"a webhook secret needs at least {MIN_SECRET_BYTES} bytes")
    return key


def _mac(key: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
