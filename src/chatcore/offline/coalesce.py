"""Push coalescing, pure (no I/O, time passed in): "12 new messages from Alice", not 12 pushes.

Per (user, chat), the first message after a quiet spell is due at once; later ones
gather until ``window_ms`` after the previous push, then go out as one notification
counting them and naming their distinct senders. A driver feeds messages, and calls
``flush(now_ms)`` after feeding and again at ``next_due_ms()``.

Messages of a chat arrive in seq order (the log gives them so); a seq not above the
highest already fed for that (user, chat) is a redelivery and is ignored. That memory
lasts while the (user, chat) has something pending or was pushed within the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chatcore.errors import InvalidRequest
from chatcore.offline._base import PushNotification

__all__ = ["DEFAULT_WINDOW_MS", "PushCoalescer"]

DEFAULT_WINDOW_MS = 2000


@dataclass
class _Batch:
    """What one (user, chat) has waiting, and when it was last pushed."""

    high_seq: int
    last_pushed_ms: int | None = None
    first_ms: int = 0
    count: int = 0
    senders: list[str] = field(default_factory=list)
    last_seq: int = 0
    preview: str | None = None
    encrypted: bool = False


class PushCoalescer:
    """Coalesces messages per (user, chat) into at most one push every ``window_ms`` (2000).

    Raises ``InvalidRequest`` if ``window_ms`` is negative.
    """

    def __init__(self, *, window_ms: int = DEFAULT_WINDOW_MS) -> None:
        if window_ms < 0:
            raise InvalidRequest(f"window_ms must not be negative, got {window_ms}")
        self._window_ms = window_ms
        self._batches: dict[str, dict[str, _Batch]] = {}

    def feed(
        self,
        user: str,
        chat_id: str,
        sender: str,
        seq: int,
        preview: str | None = None,
        *,
        now_ms: int,
        encrypted: bool = False,
    ) -> None:
        """Note that ``user`` should hear of message ``seq`` of ``chat_id`` from ``sender``.

        ``encrypted``: the message is end-to-end encrypted; the notification it goes out
        in then has no preview at all, whatever the other messages counted in it.
        """
        chats = self._batches.setdefault(user, {})
        batch = chats.get(chat_id)
        if batch is None:
            batch = chats[chat_id] = _Batch(high_seq=seq - 1)
        if seq <= batch.high_seq:
            return
        batch.high_seq = seq
        if batch.count == 0:
            batch.first_ms = now_ms
        batch.count += 1
        if sender not in batch.senders:
            batch.senders.append(sender)
        batch.last_seq = seq
        batch.encrypted = batch.encrypted or encrypted
        batch.preview = None if batch.encrypted else preview

    def flush(self, *, now_ms: int) -> list[PushNotification]:
        """The notifications due at ``now_ms``, oldest due first; they are no longer pending."""
        due: list[tuple[int, PushNotification]] = []
        for user, chats in list(self._batches.items()):
            for chat_id, batch in list(chats.items()):
                when = self._due_ms(batch)
                if when is not None and when <= now_ms:
                    due.append((when, self._take(user, chat_id, batch, now_ms)))
                elif when is None and self._quiet(batch, now_ms):
                    del chats[chat_id]
            if not chats:
                del self._batches[user]
        due.sort(key=lambda pair: pair[0])
        return [notification for _, notification in due]

    @property
    def pending(self) -> int:
        """(user, chat) notifications waiting: not yet due, or held by the window."""
        return sum(len(chats) for chats in self._batches.values())

    def next_due_ms(self) -> int | None:
        """When the next notification falls due (``None``: nothing pending)."""
        times = [
            when
            for chats in self._batches.values()
            for batch in chats.values()
            if (when := self._due_ms(batch)) is not None
        ]
        return min(times, default=None)

    def cancel(self, user: str, chat_ids: Sequence[str] | None = None) -> None:
        """Drop what is pending for ``user`` in ``chat_ids`` (``None``: all), e.g. on reconnect."""
        if chat_ids is None:
            self._batches.pop(user, None)
            return
        chats = self._batches.get(user)
        if chats is None:
            return
        for chat_id in chat_ids:
            chats.pop(chat_id, None)
        if not chats:
            del self._batches[user]

    def _due_ms(self, batch: _Batch) -> int | None:
        if batch.count == 0:
            return None
        if batch.last_pushed_ms is None:
            return batch.first_ms
        return max(batch.first_ms, batch.last_pushed_ms + self._window_ms)

    def _quiet(self, batch: _Batch, now_ms: int) -> bool:
        return batch.last_pushed_ms is None or batch.last_pushed_ms + self._window_ms <= now_ms

    @staticmethod
    def _take(user: str, chat_id: str, batch: _Batch, now_ms: int) -> PushNotification:
        notification = PushNotification(
            user=user,
            chat_id=chat_id,
            count=batch.count,
            senders=tuple(batch.senders),
            last_seq=batch.last_seq,
            preview=batch.preview,
            encrypted=batch.encrypted,
        )
        batch.count = 0
        batch.senders = []
        batch.preview = None
        batch.encrypted = False
        batch.last_pushed_ms = now_ms
        return notification
