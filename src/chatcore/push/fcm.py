"""FCM HTTP v1 sender, with the OAuth2 service-account flow (RFC 7523).

An access token is fetched from the service account's ``token_uri`` with a JWT
assertion signed RS256 by its private key (``iss`` the account's email, ``scope``
firebase.messaging, ``aud`` the token URI, one hour), kept until a minute before it
expires, and sent as ``Authorization: Bearer`` to
``POST {base_url}/v1/projects/{project_id}/messages:send`` with the body of
:func:`chatcore.push.render.fcm_message`. A 404, or an error whose ``errorCode`` is
``UNREGISTERED``, means the token is gone; a 401 forgets the access token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgspec

from chatcore.errors import InvalidRequest, Unavailable
from chatcore.offline._base import PushNotification
from chatcore.push._base import PushKind, PushOutcome, PushTarget
from chatcore.push._http import DEFAULT_TIMEOUT_S, HttpSender, httpx, jwt, private_key
from chatcore.push.render import fcm_message

__all__ = ["FCM_SCOPE", "FcmSender", "ServiceAccount"]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_EARLY_S = 60


class ServiceAccount(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a Google service-account JSON key that FCM needs."""

    project_id: str
    client_email: str
    private_key: str
    private_key_id: str = ""
    token_uri: str = "https://oauth2.googleapis.com/token"

    @classmethod
    def from_json(cls, data: bytes | str) -> ServiceAccount:
        """Read the key file's JSON. Raises ``InvalidRequest`` if a field is missing."""
        try:
            return msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"not a service-account key: {exc}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> ServiceAccount:
        """Read a key file (as the Firebase console downloads it)."""
        return cls.from_json(Path(path).read_bytes())


class _AccessToken(msgspec.Struct):
    access_token: str
    expires_in: int = 3600
    token_type: str = "Bearer"


class FcmSender(HttpSender):
    """Sends to FCM registration tokens through the HTTP v1 API.

    Options: ``base_url`` (``https://fcm.googleapis.com``); ``timeout_s`` (10) per
    request; ``http``: a borrowed ``httpx.AsyncClient``; ``clock`` (``time.time``).
    Raises ``InvalidRequest`` if the account's private key is not an RSA PEM key.
    """

    kind: PushKind = "fcm"

    def __init__(
        self,
        account: ServiceAccount,
        *,
        base_url: str = "https://fcm.googleapis.com",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        what = "the service account's private_key"
        self._key = private_key(account.private_key, "RS256", what)
        super().__init__(http, timeout_s=timeout_s, http2=False, service="FCM")
        self._account, self._clock = account, clock
        self._url = f"{base_url.rstrip('/')}/v1/projects/{account.project_id}/messages:send"
        self._token: str | None = None
        self._token_until = 0.0
        self._token_lock = anyio.Lock()

    async def send(self, target: PushTarget, notification: PushNotification) -> PushOutcome:
        """Send to one registration token. See :class:`~chatcore.push.PushSender`."""
        if target.kind != "fcm":
            raise InvalidRequest(f"an FcmSender cannot send to a {target.kind} target")
        body = msgspec.json.encode(fcm_message(notification, target.token))
        token = await self._access_token()
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        response = await self._post(self._url, content=body, headers=headers)
        if response.is_success:
            return "sent"
        if response.status_code == 404 or "UNREGISTERED" in _error_codes(response):
            return "gone"
        if response.status_code == 401:
            self._token = None
            raise Unavailable("FCM refused the access token; a new one is fetched next time")
        raise self._refused(response)

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and self._clock() < self._token_until:
                return self._token
            now = int(self._clock())
            account = self._account
            claims = {
                "iss": account.client_email,
                "scope": FCM_SCOPE,
                "aud": account.token_uri,
                "iat": now,
                "exp": now + 3600,
            }
            kid = {"kid": account.private_key_id} if account.private_key_id else None
            assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=kid)
            form = {"grant_type": _GRANT, "assertion": assertion}
            response = await self._post(account.token_uri, data=form)
            if not response.is_success:
                raise self._refused(response)
            try:
                got = msgspec.json.decode(response.content, type=_AccessToken)
            except msgspec.DecodeError as exc:
                raise Unavailable(f"the token endpoint answered no access token: {exc}") from exc
            self._token = got.access_token
            self._token_until = now + got.expires_in - _EARLY_S
            return got.access_token


def _error_codes(response: httpx.Response) -> set[str]:
    """The ``errorCode`` of each FcmError detail of an error answer."""
    try:
        error: Any = msgspec.json.decode(response.content).get("error", {})
        return {d.get("errorCode", "") for d in error.get("details", []) if isinstance(d, dict)}
    except (msgspec.DecodeError, AttributeError):
        return set()
