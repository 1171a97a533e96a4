"""APNs sender: HTTP/2, token-based authentication.

Each request is ``POST {base_url}/3/device/<device token>`` over HTTP/2 with
``authorization: bearer <JWT>`` (ES256, header ``kid`` the key id, claims ``iss`` the
team id and ``iat``; made again every ``token_refresh_s``, Apple refuses one older than
an hour), ``apns-topic`` (the app's bundle id), ``apns-push-type: alert``,
``apns-priority: 10``, ``apns-expiration`` and ``apns-collapse-id`` (the chat), and
the body of :func:`chatcore.push.render.apns_payload`. 410 ``Unregistered`` and 400
``BadDeviceToken`` mean the device token is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from chatcore.errors import InvalidRequest, Unavailable
from chatcore.offline._base import PushNotification
from chatcore.push._base import PushKind, PushOutcome, PushTarget
from chatcore.push._http import DEFAULT_TIMEOUT_S, HttpSender, httpx, jwt, private_key
from chatcore.push.render import apns_payload

__all__ = ["APNS_PRODUCTION", "APNS_SANDBOX", "ApnsSender"]

APNS_PRODUCTION = "https://api.push.apple.com"
APNS_SANDBOX = "https://api.sandbox.push.apple.com"
_GONE_REASONS = frozenset({"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"})


class _Reason(msgspec.Struct):
    reason: str = ""


class ApnsSender(HttpSender):
    """Sends to APNs device tokens with a .p8 signing key.

    - ``key``: the .p8 file's PEM text (an ES256 key); ``key_id``: its 10-character id;
      ``team_id``: the developer team id; ``topic``: the app's bundle id.
    - ``base_url`` (``APNS_PRODUCTION``; ``APNS_SANDBOX`` for development builds).
    - ``ttl_s`` (86400): how long APNs keeps a push for an offline device.
    - ``token_refresh_s`` (3000, between 1200 and 3500: Apple refuses tokens refreshed
      more often than every 20 minutes or older than an hour).
    - ``timeout_s`` (10) per request; ``http``: a borrowed ``httpx.AsyncClient``, which
      must speak HTTP/2; ``clock`` (``time.time``).

    Raises ``InvalidRequest`` for a key that is not ES256 or an option out of range.
    """

    kind: PushKind = "apns"

    def __init__(
        self,
        *,
        key: str,
        key_id: str,
        team_id: str,
        topic: str,
        base_url: str = APNS_PRODUCTION,
        ttl_s: int = 86400,
        token_refresh_s: int = 3000,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1200 <= token_refresh_s <= 3500:
            raise InvalidRequest("token_refresh_s must be between 1200 and 3500")
        if ttl_s < 0:
            raise InvalidRequest(f"ttl_s must not be negative, got {ttl_s}")
        if not (key_id and team_id and topic):
            raise InvalidRequest("key_id, team_id and topic are all needed")
        self._key = private_key(key, "ES256", "key (the .p8 file)")
        super().__init__(http, timeout_s=timeout_s, http2=True, service="APNs")
        self._key_id, self._team_id, self._topic = key_id, team_id, topic
        self._base = base_url.rstrip("/")
        self._ttl, self._refresh_s, self._clock = ttl_s, token_refresh_s, clock
        self._token = ""
        self._token_iat = 0

    async def send(self, target: PushTarget, notification: PushNotification) -> PushOutcome:
        """Send to one device token. See :class:`~chatcore.push.PushSender`."""
        if target.kind != "apns":
            raise InvalidRequest(f"an ApnsSender cannot send to a {target.kind} target")
        now = int(self._clock())
        headers = {
            "authorization": f"bearer {self._provider_token(now)}",
            "apns-topic": self._topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(now + self._ttl if self._ttl else 0),
        }
        if len(notification.chat_id.encode()) <= 64:
            headers["apns-collapse-id"] = notification.chat_id
        body = apns_payload(notification)
        response = await self._post(
            f"{self._base}/3/device/{target.token}", content=body, headers=headers
        )
        if response.http_version != "HTTP/2":
            raise Unavailable(f"APNs needs HTTP/2; the answer came over {response.http_version}")
        if response.is_success:
            return "sent"
        reason = _reason(response)
        if response.status_code == 410 or reason in _GONE_REASONS:
            return "gone"
        if reason in ("ExpiredProviderToken", "InvalidProviderToken"):
            self._token = ""
        raise self._refused(response)

    def _provider_token(self, now: int) -> str:
        if not self._token or now - self._token_iat >= self._refresh_s:
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": now},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._token_iat = now
        return self._token


def _reason(response: httpx.Response) -> str:
    try:
        return msgspec.json.decode(response.content, type=_Reason).reason
    except msgspec.DecodeError:
        return ""
