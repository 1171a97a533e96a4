"""Hands the app its events: messages in seq order per chat, each once, gaps filled first.

How this works. The reader never blocks: it puts what arrives in a bounded
*inbox* and returns to the socket (so answers to requests are never stuck behind
an app that is slow to consume events). One task, :meth:`Delivery.run`, empties
the inbox in arrival order: a message goes through :class:`Timelines` (dropped
if already delivered, held back if it comes after a gap), every other event goes
straight to the app's bounded queue. When the inbox is empty and a chat has a
gap, the task fetches the missing range with ``history(after=cursor)`` one page
at a time, so a gap is always filled before anything after it is delivered.

Nothing is lost when a queue is full: a message the inbox has no room for is
still *known* (its seq is noted), and the gap it leaves is fetched from history
once the app catches up. A history page that does not reach the missing seq yet
(the store lags the live push by a moment) is tried again after a short, growing
pause.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from itertools import islice

import anyio

from chatcore.client._events import (
    ClientEvent,
    HistorySkipped,
    MessageReceived,
    SyncCompleted,
)
from chatcore.client._session import Signal
from chatcore.client._state import Fill, Skip, Timelines
from chatcore.errors import ChatcoreError, NotFound, NotMember, ProtocolError
from chatcore.protocol import (
    MAX_LIST_LENGTH,
    ClientFrame,
    History,
    HistoryPageFrame,
    Message,
    ServerFrame,
    Sync,
    Synced,
)

__all__ = ["Ask", "Delivery"]

logger = logging.getLogger(__name__)

Ask = Callable[[Callable[[int], ClientFrame]], Awaitable[ServerFrame]]
"""Sends the request built for an id and returns the answer; raises the answer's error."""

_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


class Delivery:
    """The inbox, the ordering state and the app's event queue, with the task that links them."""

    def __init__(
        self,
        timelines: Timelines,
        *,
        queue_size: int,
        history_page: int,
        ask: Ask,
        reveal: Callable[[Message], MessageReceived] = MessageReceived,
    ) -> None:
        """``reveal``: the event for a message (the client's end-to-end keyring opens it)."""
        self.timelines = timelines
        self._reveal = reveal
        self.history_page = history_page
        self.online = False
        """Whether a session is up (gap fills wait for one)."""
        self.dropped = 0
        """Events the full inbox had no room for (messages among them are fetched again)."""
        self._ask = ask
        self._inbox: deque[Message | ClientEvent] = deque()
        self._inbox_limit = queue_size
        self._wake = Signal()
        self._catching_up = 0
        self._closing = False
        self._retry_at: dict[str, float] = {}
        self._retry_wait: dict[str, float] = {}
        self._send, self.events = anyio.create_memory_object_stream[ClientEvent](queue_size)

    # -- fed by the reader and the client (never block) --------------------------------

    def push_message(self, message: Message) -> None:
        """A message frame arrived (live push or sync)."""
        self.timelines.observe(message.chat, message.seq)
        self._push(message)

    def push_event(self, event: ClientEvent) -> None:
        """Any other event for the app."""
        self._push(event)

    def wake(self) -> None:
        """Look again for work (a session came up, a chat became known)."""
        self._wake.notify()

    def finish(self) -> None:
        """Deliver what the inbox holds, then end the event stream."""
        self._closing = True
        self._wake.notify()

    def _push(self, item: Message | ClientEvent) -> None:
        if len(self._inbox) >= self._inbox_limit:
            self.dropped += 1
            if not isinstance(item, Message):
                logger.warning("event queue full: dropped %s", type(item).__name__)
            return
        self._inbox.append(item)
        self._wake.notify()

    # -- the delivery task ---------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until ``finish()``; run it as one task for the client's lifetime."""
        try:
            while True:
                if self._inbox:
                    await self._drain_inbox()
                    continue
                if self._closing:
                    return
                plan, wait_s = self._next_plan()
                if plan is not None:
                    await self._carry_out(plan)
                    continue
                with anyio.move_on_after(wait_s):
                    await self._wake.wait()
        finally:
            self._send.close()

    async def _drain_inbox(self) -> None:
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, Message):
                self.timelines.offer(item)
                await self._release()
            else:
                await self._deliver(item)

    async def _release(self) -> None:
        """Deliver every message that now follows its chat's cursor."""
        for message in self.timelines.drain_ready():
            await self._deliver(self._reveal(message))

    async def _deliver(self, event: ClientEvent) -> None:
        # BrokenResourceError: the app closed its end, nobody is listening any more
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            try:
                self._send.send_nowait(event)  # no trip through the event loop per message
            except anyio.WouldBlock:
                await self._send.send(event)  # the app is behind: wait for room

    def _next_plan(self) -> tuple[Fill | Skip | None, float]:
        """The next gap to work on, else how long until a retry is due."""
        if not self.online or self._catching_up:
            return None, math.inf
        now = anyio.current_time()
        soonest = math.inf
        for chat in self.timelines.gaps():
            due = self._retry_at.get(chat, 0.0)
            if due > now:
                soonest = min(soonest, due - now)
                continue
            plan = self.timelines.next_fill(chat, page=self.history_page)
            if plan is not None:
                return plan, 0.0
        return None, soonest

    async def _carry_out(self, plan: Fill | Skip) -> None:
        if isinstance(plan, Skip):
            await self._deliver(HistorySkipped(plan.chat, plan.after, plan.until))
            await self._release()
            return
        chat = plan.chat
        try:
            answer = await self._ask(
                lambda rid: History(id=rid, chat=chat, after=plan.after, limit=plan.limit)
            )
        except (NotMember, NotFound):
            self.timelines.forget(chat)
            return
        except ChatcoreError as exc:
            logger.info("history of %s after %d failed: %s", chat, plan.after, exc)
            self._retry_later(chat)
            return
        if not isinstance(answer, HistoryPageFrame):
            logger.warning("expected a history page, got %s", type(answer).__name__)
            self._retry_later(chat)
            return
        self.timelines.offer_all(answer.messages)
        await self._release()
        if self.timelines.cursor(chat) > plan.after:
            self._retry_at.pop(chat, None)
            self._retry_wait.pop(chat, None)
        else:  # the store has not caught up with the push yet
            self._retry_later(chat)

    def _retry_later(self, chat: str) -> None:
        wait = min(_RETRY_MAX_S, self._retry_wait.get(chat, _RETRY_FIRST_S / 2) * 2)
        self._retry_wait[chat] = wait
        self._retry_at[chat] = anyio.current_time() + wait

    # -- catching up after (re)connecting -----------------------------------------------

    async def catch_up(self, ask: Ask) -> None:
        """Learn every chat's last seq, skip what is beyond the backfill limit, then sync
        from the cursors; gaps left over are filled by the delivery task afterwards.

        Raises what ``ask`` raises (the session was lost, the server refused).
        """
        self._catching_up += 1
        try:
            known_before = set(self.timelines.cursors())
            answer = _synced(await ask(lambda rid: Sync(id=rid)))
            states = {state.chat: state for state in answer.chats}
            for chat in known_before - states.keys():
                self.timelines.forget(chat)  # no longer a member
            for state in answer.chats:
                self.timelines.observe(state.chat, state.last_seq)
                plan = self.timelines.next_fill(state.chat, page=self.history_page)
                if isinstance(plan, Skip):
                    self.push_event(HistorySkipped(plan.chat, plan.after, plan.until))
            behind = self.timelines.behind()
            for chunk in _chunks(behind, MAX_LIST_LENGTH):
                answer = _synced(await ask(_sync_from(chunk)))
                states.update((state.chat, state) for state in answer.chats)
            self.push_event(SyncCompleted(tuple(states.values())))
        finally:
            self._catching_up -= 1
            self._wake.notify()


def _sync_from(cursors: dict[str, int]) -> Callable[[int], ClientFrame]:
    return lambda rid: Sync(id=rid, cursors=cursors)


def _synced(frame: ServerFrame) -> Synced:
    if not isinstance(frame, Synced):
        raise ProtocolError(f"expected synced, got {type(frame).__name__}")
    return frame


def _chunks(cursors: Mapping[str, int], size: int) -> list[dict[str, int]]:
    items = iter(cursors.items())
    chunks = []
    while chunk := dict(islice(items, size)):
        chunks.append(chunk)
    return chunks
