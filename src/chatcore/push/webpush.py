"""Web Push sender (RFC 8030), the payload encrypted for the subscription (RFC 8291,
aes128gcm) and the request signed with VAPID (RFC 8292), by ``pywebpush``/``py_vapid``.

Per request: the payload of :func:`chatcore.push.render.webpush_payload` encrypted with
the subscription's ``p256dh``/``auth``; ``Authorization: vapid t=<JWT>,k=<public key>``
whose ES256 JWT has ``aud`` the endpoint's origin, ``exp`` and ``sub``; ``TTL``,
``Urgency`` and a ``Topic`` per chat (a newer push of the chat replaces one still
waiting at the push service). 404 and 410 mean the subscription is gone.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import urlsplit

from chatcore._extras import missing_extra
from chatcore.errors import InvalidRequest
from chatcore.offline._base import PushNotification
from chatcore.push._base import PushKind, PushOutcome, PushTarget
from chatcore.push._http import DEFAULT_TIMEOUT_S, HttpSender, httpx
from chatcore.push.render import webpush_payload

try:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from py_vapid import Vapid, VapidException
    from pywebpush import WebPusher, WebPushException
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("push", exc, needed_by="chatcore.push.webpush") from exc

__all__ = ["WebPushSender", "application_server_key"]

Urgency = Literal["very-low", "low", "normal", "high"]


class WebPushSender(HttpSender):
    """Sends to Web Push subscriptions (browsers' push services).

    - ``vapid_private_key``: the application server's P-256 key, base64url raw (32
      bytes, as ``vapid --gen`` or web-push tools print) or PEM. Its public key is the
      ``applicationServerKey`` the page subscribes with.
    - ``vapid_subject``: a ``mailto:`` or ``https:`` contact for the push service.
    - ``ttl_s`` (86400): how long the push service keeps a push for an offline browser.
    - ``urgency`` (``"high"``); ``jwt_lifetime_s`` (43200, at most a day);
      ``timeout_s`` (10) per request; ``http``: a borrowed ``httpx.AsyncClient``;
      ``clock`` (``time.time``).

    Raises ``InvalidRequest`` for a bad key, subject or option.
    """

    kind: PushKind = "webpush"

    def __init__(
        self,
        *,
        vapid_private_key: str,
        vapid_subject: str,
        ttl_s: int = 86400,
        urgency: Urgency = "high",
        jwt_lifetime_s: int = 43200,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not vapid_subject.startswith(("mailto:", "https://")):
            raise InvalidRequest("vapid_subject must be a mailto: or https: URL")
        if not 0 < jwt_lifetime_s <= 86400:
            raise InvalidRequest("jwt_lifetime_s must be between 1 and 86400")
        if ttl_s < 0:
            raise InvalidRequest(f"ttl_s must not be negative, got {ttl_s}")
        self._vapid = _vapid(vapid_private_key)
        self.application_server_key = _public_key(self._vapid)
        """The VAPID public key (base64url point): the page's ``applicationServerKey``."""
        super().__init__(http, timeout_s=timeout_s, http2=False, service="the web push service")
        self._subject, self._ttl, self._urgency = vapid_subject, ttl_s, urgency
        self._lifetime, self._clock = jwt_lifetime_s, clock

    async def send(self, target: PushTarget, notification: PushNotification) -> PushOutcome:
        """Encrypt and send; ``"gone"`` on 404/410. See :class:`~chatcore.push.PushSender`."""
        if target.kind != "webpush" or target.keys is None:
            raise InvalidRequest(f"a WebPushSender cannot send to a {target.kind} target")
        subscription = {
            "endpoint": target.token,
            "keys": {"p256dh": target.keys.p256dh, "auth": target.keys.auth},
        }
        try:
            encoded: Any = WebPusher(subscription).encode(
                webpush_payload(notification), content_encoding="aes128gcm"
            )
        except (WebPushException, ValueError, TypeError) as exc:
            raise InvalidRequest(f"cannot encrypt for this subscription: {exc}") from exc
        url = urlsplit(target.token)
        claims = {
            "sub": self._subject,
            "aud": f"{url.scheme}://{url.netloc}",
            "exp": int(self._clock()) + self._lifetime,
        }
        headers = {
            **self._vapid.sign(claims),
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            "ttl": str(self._ttl),
            "urgency": self._urgency,
            "topic": _topic(notification.chat_id),
        }
        response = await self._post(target.token, content=encoded["body"], headers=headers)
        if response.status_code in (404, 410):
            return "gone"
        if not response.is_success:
            raise self._refused(response)
        return "sent"


def _topic(chat_id: str) -> str:
    """RFC 8030 Topic: at most 32 base64url characters; one per chat."""
    digest = hashlib.sha256(chat_id.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def application_server_key(vapid_private_key: str) -> str:
    """The public key of ``vapid_private_key`` (as :class:`WebPushSender` takes it), base64url.

    Raises ``InvalidRequest`` if it is not a P-256 private key.
    """
    return _public_key(_vapid(vapid_private_key))


def _vapid(vapid_private_key: str) -> Vapid:
    try:
        if "-----BEGIN" in vapid_private_key:
            return Vapid.from_pem(vapid_private_key.encode())
        return Vapid.from_string(vapid_private_key.strip())
    except (VapidException, ValueError, TypeError) as exc:
        raise InvalidRequest(f"vapid_private_key is not a P-256 private key: {exc}") from exc


def _public_key(vapid: Vapid) -> str:
    point = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(point).decode().rstrip("=")
