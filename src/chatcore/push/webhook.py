"""A ``PushNotifier`` that POSTs notifications as signed JSON to one URL (your own service).

Each ``notify`` call sends its notifications in requests of at most ``max_batch``:
``{"notifications": [{"user", "chat_id", "count", "senders", "last_seq",
"encrypted", "title", "body"}, ...]}`` with the header ``Chatcore-Signature``
(:mod:`chatcore.push.signature`). Any 2xx answer is success. A failed request is
logged and counted in ``stats``, never raised: a push is a hint, and the
DeliveryWorker that calls ``notify`` must go on delivering.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import msgspec

from chatcore.errors import ChatcoreClosed, ChatcoreError, InvalidRequest
from chatcore.offline._base import PushNotification
from chatcore.push._base import PushStats
from chatcore.push._http import DEFAULT_TIMEOUT_S, HttpSender, httpx
from chatcore.push.render import webhook_payload
from chatcore.push.signature import SIGNATURE_HEADER, sign_webhook

__all__ = ["WebhookPushNotifier"]

logger = logging.getLogger(__name__)


class WebhookPushNotifier(HttpSender):
    """Signed webhook notifications to ``url`` (http or https).

    Options: ``secret`` (at least 16 bytes) signs each request; ``max_batch`` (100)
    notifications per request; ``timeout_s`` (10) per request; ``http``: a borrowed
    ``httpx.AsyncClient``; ``clock`` (``time.time``) stamps the signature.
    Raises ``InvalidRequest`` for a bad URL, secret or option.
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str | bytes,
        max_batch: int = 100,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            raise InvalidRequest(f"a webhook URL must be http(s) with a host, got {url!r}")
        if max_batch < 1:
            raise InvalidRequest(f"max_batch must be at least 1, got {max_batch}")
        sign_webhook(secret, b"", timestamp=0)  # checks the secret before anything opens
        super().__init__(http, timeout_s=timeout_s, http2=False, service="the webhook")
        self._url, self._secret, self._max_batch, self._clock = url, secret, max_batch, clock
        self._sent = self._failed = 0

    @property
    def stats(self) -> PushStats:
        """Notifications delivered and failed so far."""
        return PushStats(sent=self._sent, failed=self._failed)

    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """POST ``notifications``; failures are logged and counted, not raised.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        for start in range(0, len(notifications), self._max_batch):
            chunk = notifications[start : start + self._max_batch]
            body = msgspec.json.encode({"notifications": [webhook_payload(n) for n in chunk]})
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: sign_webhook(self._secret, body, timestamp=int(self._clock())),
            }
            try:
                response = await self._post(self._url, content=body, headers=headers)
                if not response.is_success:
                    raise self._refused(response)
            except ChatcoreClosed:
                raise
            except ChatcoreError as exc:
                self._failed += len(chunk)
                logger.warning("webhook push of %d notifications failed: %s", len(chunk), exc)
            else:
                self._sent += len(chunk)
