"""What the client holds between frames: per-chat cursors, gaps, and sends not yet accepted.

Pure bookkeeping, no I/O and no clock. The client feeds it what arrives and asks it
what to do next:

- :class:`Timelines` keeps, per chat, the *cursor* (the last seq handed to the
  application; every seq up to it was handed over exactly once), the highest seq
  known to exist, and messages that arrived ahead of a gap. ``offer`` takes a
  message from anywhere (a push, a sync, a history page) and ignores what is
  already delivered or buffered; ``pop_ready`` hands out the next message in seq
  order; ``next_fill`` says which range to fetch with ``history(after=cursor)``,
  or that a chat is further behind than ``backfill_limit`` and must skip ahead.
- :class:`Outbox` keeps sends until the server accepts them, in the order they
  were made, so that after a reconnect they go out again in the same order with
  the same ``client_msg_id`` (the server stores a retried message once). A send
  refused as ``rate_limited`` is deferred, and everything queued after it waits.
- :class:`ReceiptOutbox` keeps the highest receipt per chat and status that has
  not reached a live connection yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import msgspec

from chatcore.protocol import Message, ReceiptStatus, Send

__all__ = ["Fill", "Outbox", "PendingSend", "ReceiptOutbox", "Skip", "Timelines"]

MAX_HISTORY_PAGE = 200
"""The largest ``limit`` a ``history`` request may ask for."""


@dataclass(frozen=True, slots=True)
class Fill:
    """Fetch ``history(chat, after=after, limit=limit)``: the next missing messages."""

    chat: str
    after: int
    limit: int


@dataclass(frozen=True, slots=True)
class Skip:
    """The chat is more than the backfill limit behind: seqs ``after+1 .. until`` are skipped.

    The cursor has moved to ``until``; those messages stay readable with ``history``.
    """

    chat: str
    after: int
    until: int


@dataclass(slots=True)
class _Timeline:
    cursor: int = 0
    known_last: int = 0
    buffered: dict[int, Message] = field(default_factory=dict)


class Timelines:
    """Per-chat cursors and out-of-order buffers: messages leave in seq order, each once."""

    def __init__(
        self,
        cursors: Mapping[str, int] | None = None,
        *,
        max_buffered: int = 1000,
        backfill_limit: int | None = 1000,
    ) -> None:
        """``cursors``: last seq the app already holds per chat (restored from its storage).

        ``max_buffered``: the most out-of-order messages kept per chat (more are dropped
        and fetched again later); ``backfill_limit``: the most missed messages of one
        chat fetched to catch up (None: all of them). Raise ValueError for a negative value.
        """
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1")
        if backfill_limit is not None and backfill_limit < 0:
            raise ValueError("backfill_limit must be None or at least 0")
        self.max_buffered = max_buffered
        self.backfill_limit = backfill_limit
        self._chats: dict[str, _Timeline] = {}
        self._ready: set[str] = set()
        for chat, seq in (cursors or {}).items():
            if seq < 0:
                raise ValueError(f"cursor of {chat!r} is negative")
            self._chats[chat] = _Timeline(cursor=seq, known_last=seq)

    def __contains__(self, chat: object) -> bool:
        return chat in self._chats

    def cursors(self) -> dict[str, int]:
        """The last seq handed to the application, per chat."""
        return {chat: t.cursor for chat, t in self._chats.items()}

    def cursor(self, chat: str) -> int:
        """The last seq of ``chat`` handed to the application (0 for an unknown chat)."""
        timeline = self._chats.get(chat)
        return 0 if timeline is None else timeline.cursor

    def known_last(self, chat: str) -> int:
        """The highest seq of ``chat`` known to exist."""
        timeline = self._chats.get(chat)
        return 0 if timeline is None else timeline.known_last

    def behind(self) -> dict[str, int]:
        """Cursors of the chats with messages known to exist past them."""
        return {c: t.cursor for c, t in self._chats.items() if t.known_last > t.cursor}

    def track(self, chat: str) -> None:
        """Follow ``chat`` from its first message if it is new."""
        self._timeline(chat)

    def forget(self, chat: str) -> None:
        """Stop following ``chat`` (the user left it); its buffered messages are dropped."""
        self._chats.pop(chat, None)
        self._ready.discard(chat)

    def observe(self, chat: str, last_seq: int) -> None:
        """Learn that ``chat`` has messages up to ``last_seq``."""
        timeline = self._timeline(chat)
        timeline.known_last = max(timeline.known_last, last_seq)

    def offer(self, message: Message) -> bool:
        """Take a message; False if already delivered or buffered, or dropped to stay bounded.

        A dropped message is still known to exist and is fetched again by ``next_fill``.
        """
        timeline = self._timeline(message.chat)
        seq = message.seq
        timeline.known_last = max(timeline.known_last, seq)
        if seq <= timeline.cursor or seq in timeline.buffered:
            return False
        if len(timeline.buffered) >= self.max_buffered:
            highest = max(timeline.buffered)
            if seq > highest:
                return False
            del timeline.buffered[highest]
        timeline.buffered[seq] = message
        if seq == timeline.cursor + 1:
            self._ready.add(message.chat)
        return True

    def offer_all(self, messages: Iterable[Message]) -> int:
        """Offer each message; the number that were new."""
        return sum(self.offer(message) for message in messages)

    def pop_ready(self) -> Message | None:
        """The next message that directly follows its chat's cursor, moving the cursor; or None."""
        while self._ready:
            chat = next(iter(self._ready))
            timeline = self._chats[chat]
            message = timeline.buffered.pop(timeline.cursor + 1, None)
            if message is None:
                self._ready.discard(chat)
                continue
            timeline.cursor = message.seq
            if timeline.cursor + 1 not in timeline.buffered:
                self._ready.discard(chat)
            return message
        return None

    def drain_ready(self) -> Iterator[Message]:
        """Pop ready messages until none is left (each moves its chat's cursor)."""
        while (message := self.pop_ready()) is not None:
            yield message

    def gaps(self) -> list[str]:
        """Chats whose next message is missing though later ones exist, in no fixed order."""
        return [
            chat
            for chat, t in self._chats.items()
            if t.known_last > t.cursor and t.cursor + 1 not in t.buffered
        ]

    def next_fill(self, chat: str, *, page: int = 100) -> Fill | Skip | None:
        """What to do about ``chat``'s gap: fetch a page, skip ahead, or nothing (no gap).

        A skip moves the cursor at once (so it happens once) and drops buffered
        messages at or below it. Raise ValueError if ``page`` is not within 1..200.
        """
        if not 1 <= page <= MAX_HISTORY_PAGE:
            raise ValueError(f"page must be within 1..{MAX_HISTORY_PAGE}")
        timeline = self._chats.get(chat)
        if timeline is None or timeline.cursor + 1 in timeline.buffered:
            return None
        missing = timeline.known_last - timeline.cursor
        if missing <= 0:
            return None
        if self.backfill_limit is not None and missing > self.backfill_limit:
            skipped = Skip(chat, timeline.cursor, timeline.known_last - self.backfill_limit)
            timeline.cursor = skipped.until
            for seq in [s for s in timeline.buffered if s <= skipped.until]:
                del timeline.buffered[seq]
            if timeline.cursor + 1 in timeline.buffered:
                self._ready.add(chat)
            return skipped
        upto = min(timeline.buffered, default=timeline.known_last + 1) - 1
        return Fill(chat, timeline.cursor, min(page, upto - timeline.cursor))

    def _timeline(self, chat: str) -> _Timeline:
        timeline = self._chats.get(chat)
        if timeline is None:
            timeline = self._chats[chat] = _Timeline()
        return timeline


@dataclass(slots=True)
class PendingSend:
    """A send the server has not accepted yet."""

    frame: Send
    """The frame as first made; its ``id`` is replaced on every transmission."""
    epoch: int = -1
    """The session it was last transmitted on (-1: never, or to go out again)."""
    request_id: int | None = None
    """The ``id`` of its last transmission."""
    not_before: float = 0.0
    """Not to be transmitted before this time (after a ``rate_limited`` answer)."""


class Outbox:
    """Sends awaiting ``accepted``, oldest first, keyed by ``client_msg_id``.

    Times are whatever clock the caller uses; the outbox only compares them.
    """

    def __init__(self) -> None:
        self._pending: dict[str, PendingSend] = {}
        self._by_request: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, client_msg_id: object) -> bool:
        return client_msg_id in self._pending

    def add(self, frame: Send) -> bool:
        """Queue a send; False if one with its ``client_msg_id`` is already pending."""
        if frame.client_msg_id in self._pending:
            return False
        self._pending[frame.client_msg_id] = PendingSend(frame)
        return True

    def next_due(self, epoch: int, *, now: float = 0.0) -> PendingSend | None:
        """The oldest send still to transmit on session ``epoch``, if it is due by ``now``.

        None while it is deferred past ``now``: what was queued after it waits too,
        so sends keep their order.
        """
        for pending in self._pending.values():
            if pending.epoch != epoch:
                return pending if pending.not_before <= now else None
        return None

    def next_due_at(self, epoch: int) -> float | None:
        """When the oldest send still to transmit on ``epoch`` is due (None: there is none)."""
        for pending in self._pending.values():
            if pending.epoch != epoch:
                return pending.not_before
        return None

    def transmit(self, client_msg_id: str, *, epoch: int, request_id: int) -> Send:
        """Record a transmission; the frame to put on the wire (marked ``retry`` from the
        second transmission on). Raise KeyError if not pending."""
        pending = self._pending[client_msg_id]
        if pending.request_id is not None:
            self._by_request.pop(pending.request_id, None)
        resend = pending.request_id is not None
        pending.epoch = epoch
        pending.request_id = request_id
        self._by_request[request_id] = client_msg_id
        retry = resend or pending.frame.retry
        return msgspec.structs.replace(pending.frame, id=request_id, retry=retry)

    def defer(self, client_msg_id: str, *, until: float) -> None:
        """Transmit again, not before ``until`` (the server said ``rate_limited``)."""
        pending = self._pending.get(client_msg_id)
        if pending is not None:
            pending.epoch = -1
            pending.not_before = max(pending.not_before, until)

    def by_request(self, request_id: int) -> str | None:
        """The ``client_msg_id`` of the pending send last transmitted with ``request_id``."""
        return self._by_request.get(request_id)

    def remove(self, client_msg_id: str) -> PendingSend | None:
        """Forget a send (accepted, refused or given up); the entry, or None if not pending."""
        pending = self._pending.pop(client_msg_id, None)
        if pending is not None and pending.request_id is not None:
            self._by_request.pop(pending.request_id, None)
        return pending


class ReceiptOutbox:
    """The highest receipt per (chat, status) that still has to reach the server."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, ReceiptStatus], int] = {}

    def __len__(self) -> int:
        return len(self._marks)

    def put(self, chat: str, status: ReceiptStatus, seq: int) -> None:
        """Remember a receipt; a lower seq than one already waiting changes nothing."""
        key = (chat, status)
        self._marks[key] = max(seq, self._marks.get(key, seq))

    def take(self) -> list[tuple[str, ReceiptStatus, int]]:
        """Every waiting receipt, removed; ``put`` back the ones that could not be sent."""
        marks, self._marks = self._marks, {}
        return [(chat, status, seq) for (chat, status), seq in marks.items()]
