"""``DevicePushNotifier``: the ``PushNotifier`` that reaches each user's registered devices.

For a batch of notifications it reads the users' targets from the ``PushTokenStore``
once, then sends every (notification, target) pair through the sender of the
target's kind, at most ``max_concurrency`` at once and each within ``timeout_s``.
A target its service reports gone is dropped from the store. A failure (service down,
timeout, refusal) is logged and counted in ``stats`` and never raised, not even when
every send fails: a push is a hint (the message is in the history either way), and
the DeliveryWorker calling ``notify`` must go on delivering to live devices.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, ChatcoreError, InvalidRequest
from chatcore.offline._base import PushNotification
from chatcore.push._base import PushKind, PushSender, PushStats, PushTarget, PushTokenStore

__all__ = ["DevicePushNotifier"]

logger = logging.getLogger(__name__)


class DevicePushNotifier(ClosingContext):
    """Pushes to devices through ``senders`` (one per kind), targets from ``tokens``.

    Options: ``max_concurrency`` (32) sends at once; ``timeout_s`` (15) per send,
    the sender's own request timeout included. A target of a kind no sender serves is
    skipped (counted as failed). ``aclose()`` closes the senders, not the token store.
    Raises ``InvalidRequest`` for two senders of one kind or an option out of range.
    """

    def __init__(
        self,
        tokens: PushTokenStore,
        senders: Sequence[PushSender],
        *,
        max_concurrency: int = 32,
        timeout_s: float = 15.0,
    ) -> None:
        if max_concurrency < 1:
            raise InvalidRequest(f"max_concurrency must be at least 1, got {max_concurrency}")
        if not timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {timeout_s}")
        self._senders: dict[PushKind, PushSender] = {}
        for sender in senders:
            if sender.kind in self._senders:
                raise InvalidRequest(f"two senders for {sender.kind}")
            self._senders[sender.kind] = sender
        self._tokens, self._timeout_s = tokens, timeout_s
        self._limit = anyio.CapacityLimiter(max_concurrency)
        self._sent = self._gone = self._failed = 0
        self._closed = False

    @property
    def stats(self) -> PushStats:
        """Pushes accepted, targets dropped as gone, and failed sends so far."""
        return PushStats(self._sent, self._gone, self._failed)

    async def notify(self, notifications: Sequence[PushNotification]) -> None:
        """Send ``notifications`` to their users' devices; failures are counted, not raised.

        Raises ``ChatcoreClosed`` after ``aclose()``.
        """
        if self._closed:
            raise ChatcoreClosed("DevicePushNotifier used after aclose()")
        if not notifications:
            return
        try:
            targets = await self._tokens.targets(list(dict.fromkeys(n.user for n in notifications)))
        except ChatcoreClosed:
            raise
        except ChatcoreError as exc:
            self._failed += len(notifications)
            logger.warning("push targets could not be read: %s", exc)
            return
        by_user: dict[str, list[PushTarget]] = {}
        for target in targets:
            by_user.setdefault(target.user, []).append(target)
        async with anyio.create_task_group() as tg:
            for notification in notifications:
                for target in by_user.get(notification.user, []):
                    tg.start_soon(self._send, target, notification)

    async def aclose(self) -> None:
        """Close the senders; later ``notify`` calls raise ChatcoreClosed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sender in self._senders.values():
            await sender.aclose()

    async def _send(self, target: PushTarget, notification: PushNotification) -> None:
        sender = self._senders.get(target.kind)
        if sender is None:
            self._failed += 1
            logger.warning("no push sender for %s (device %s)", target.kind, target.device)
            return
        async with self._limit:
            try:
                with anyio.fail_after(self._timeout_s):
                    outcome = await sender.send(target, notification)
            except (ChatcoreError, TimeoutError) as exc:
                self._failed += 1
                logger.warning(
                    "%s push to %s/%s failed: %s", target.kind, target.user, target.device, exc
                )
                return
        if outcome == "sent":
            self._sent += 1
            return
        self._gone += 1
        logger.info("%s target of %s/%s is gone", target.kind, target.user, target.device)
        try:
            await self._tokens.drop(target)
        except ChatcoreError as exc:
            logger.warning("a gone push target could not be dropped: %s", exc)
