"""Keeps one session open across network trouble, and everything that must survive a drop.

How this works. :meth:`ReconnectingConnection.run` (the *supervisor*) connects,
says ``hello``, and after ``welcome`` runs the session's tasks (reader, sender,
heartbeat, resume) until the transport closes; then it reconnects, at once for
close codes 1001/1012/4008 and after an exponential back-off with jitter
otherwise, and stops for good on 4001.

Sends live in an :class:`Outbox` until ``accepted``: one sender task per session
transmits them oldest first, so a send in flight when the connection drops goes
out again on the next session with the same ``client_msg_id`` (the server
stores it once). Receipts wait in a :class:`ReceiptOutbox` the same way. Other
requests are matched to answers by ``id``; those safe to repeat are asked again
on the next session if the connection drops before the answer. After every
``welcome`` the *resume* task follows presence again and catches up from the
cursors (see ``_delivery``).
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import anyio

from chatcore.client._backoff import Backoff, Reconnect, reconnect_after
from chatcore.client._delivery import Delivery
from chatcore.client._errors import error_from_frame, expect_frame
from chatcore.client._events import (
    ChatUpdated,
    Connected,
    DeviceKeysChanged,
    Disconnected,
    PresenceChanged,
    ReceiptChanged,
    ServerError,
    TypingStarted,
)
from chatcore.client._options import ClientOptions
from chatcore.client._session import Reply, Session, Signal, open_session
from chatcore.client._state import Outbox, ReceiptOutbox
from chatcore.client._transport import Connector
from chatcore.errors import (
    ChatcoreError,
    ConnectionClosed,
    InvalidRequest,
    Unauthorized,
    Unavailable,
)
from chatcore.protocol import (
    MAX_LIST_LENGTH,
    AcceptedFrame,
    ChatFrame,
    ChatView,
    ClientFrame,
    ErrorFrame,
    KeysChanged,
    Message,
    Ping,
    PresenceFrame,
    PresenceSubscribe,
    Receipt,
    ReceiptStatus,
    ReceiptUpdate,
    Send,
    ServerFrame,
    TypingUpdate,
)

__all__ = ["KeyCache", "ReconnectingConnection", "TokenProvider"]

logger = logging.getLogger(__name__)

TokenProvider = Callable[[], str | Awaitable[str]]
"""Returns a fresh token; called before every connection attempt."""

_C = TypeVar("_C", bound=ChatView)
_STABLE_SESSION_S = 1.0
WAIT_AND_RETRY = frozenset({"rate_limited", "overloaded"})
"""Error codes of a request refused before it was handled: sent again after
``retry_after_ms``."""
"""A session shorter than this reconnects after a back-off even for 'reconnect now' codes."""


class KeyCache(Protocol):
    """Device keys the client keeps between sends: told what may have made them stale."""

    def user_keys_changed(self, user: str) -> None:
        """A ``keys.changed`` push named ``user``."""

    def chat_changed(self, chat: str) -> None:
        """A chat's members may have changed."""

    def session_opened(self) -> None:
        """A new session: pushes may have been missed while there was none."""


class ReconnectingConnection:
    """One device's sessions, one after another, and the state that outlives each."""

    def __init__(
        self,
        url: str,
        *,
        device: str,
        subprotocol: str,
        token_provider: TokenProvider,
        connector: Connector,
        options: ClientOptions,
        delivery: Delivery,
        keys: KeyCache | None = None,
    ) -> None:
        """``keys``: told of every push that may make cached device keys stale."""
        self.url = url
        self.device = device
        self.subprotocol = subprotocol
        self.options = options
        self.delivery = delivery
        self._keys = keys
        self.user: str | None = None
        self.fatal: ChatcoreError | None = None
        """Why the connection stopped for good (None while it keeps going)."""
        self._token_provider = token_provider
        self._connector = connector
        self._ids = itertools.count(1)
        self._epochs = itertools.count(1)
        self._outbox = Outbox()
        self._send_replies: dict[str, Reply] = {}
        self._receipts = ReceiptOutbox()
        self._presence: set[str] = set()
        self._session: Session | None = None
        self._session_changed = Signal()
        self._outbox_changed = Signal()

    @property
    def connected(self) -> bool:
        return self._session is not None and not self._session.lost

    # -- what the client calls -------------------------------------------------------

    async def request(
        self,
        build: Callable[[int], ClientFrame],
        *,
        retry: bool = True,
        session: Session | None = None,
    ) -> ServerFrame:
        """Send the request built for a fresh id and await its answer, on the next session
        if none is open.

        ``retry``: ask again on the next session if the connection drops first
        (never with ``session``: only on that one). A ``rate_limited`` or
        ``overloaded`` answer is waited out (``retry_after_ms``) and asked again.
        Raises the answer's error, Unavailable on timeout (or on a drop when not retrying), and
        ``fatal`` once stopped.
        """
        limit = self.options.request_timeout_s
        try:
            with anyio.fail_after(limit):
                while True:
                    on = session or await self.wait_session()
                    request_id = next(self._ids)
                    try:
                        answer = await on.request(build(request_id), request_id)
                    except ConnectionClosed:
                        if retry and session is None:
                            continue
                        raise
                    if isinstance(answer, ErrorFrame) and answer.code in WAIT_AND_RETRY:
                        await anyio.sleep((answer.retry_after_ms or 100) / 1000)
                        continue  # refused before it was handled: safe to ask again
                    if isinstance(answer, ErrorFrame):
                        raise error_from_frame(answer)
                    return answer
        except TimeoutError as exc:
            raise Unavailable(f"no answer within {limit} s") from exc

    async def wait_session(self) -> Session:
        """The open session, once there is one; raise ``fatal`` once stopped."""
        while True:
            if self.fatal is not None:
                raise self.fatal
            session = self._session
            if session is not None and not session.lost:
                return session
            await self._session_changed.wait()

    async def send(self, frame: Send) -> ServerFrame:
        """Queue a send until accepted; the ``accepted`` or ``error`` frame.

        A send whose ``client_msg_id`` is pending joins it; one refused as
        ``rate_limited`` or ``overloaded`` goes out again after ``retry_after_ms``.
        Raises Unavailable after ``options.send_timeout_s`` (the send is dropped from
        the queue), and ``fatal``.
        """
        cmid = frame.client_msg_id
        reply = self._send_replies.get(cmid)
        if reply is None:
            reply = self._send_replies[cmid] = Reply()
            self._outbox.add(frame)
            self._outbox_changed.notify()
        limit = self.options.send_timeout_s
        try:
            with anyio.fail_after(limit):
                return await reply.wait()
        except TimeoutError as exc:
            error = Unavailable(f"send {cmid!r} not accepted within {limit} s; retry with its id")
            self._settle_send(cmid, error)
            raise error from exc

    def receipt(self, chat: str, status: ReceiptStatus, seq: int) -> None:
        """Queue a receipt (the highest per chat and status); raise InvalidRequest for seq < 0."""
        if seq < 0:
            raise InvalidRequest("seq must be at least 0")
        self._receipts.put(chat, status, seq)
        self._outbox_changed.notify()

    async def send_if_connected(self, frame: ClientFrame) -> bool:
        """Send a frame that needs no answer if a session is open; whether it went out."""
        session = self._session
        if session is None or session.lost:
            return False
        try:
            await session.send(frame)
        except ConnectionClosed:
            return False
        return True

    def follow_presence(self, users: Sequence[str], *, follow: bool) -> None:
        """Remember whose presence to subscribe to again after a reconnect."""
        if follow:
            self._presence.update(users)
        else:
            self._presence.difference_update(users)

    def observe(self, chat: _C) -> _C:
        """Note a chat's last seq, so delivery fetches what the app has not seen."""
        self.delivery.timelines.observe(chat.chat, chat.last_seq)
        self.delivery.wake()
        return chat

    def fail(self, error: ChatcoreError) -> None:
        """Stop for good: every waiting call raises ``error``, the event stream ends."""
        if self.fatal is None:
            self.fatal = error
        for cmid in list(self._send_replies):
            self._settle_send(cmid, error)
        self._session_changed.notify()
        self.delivery.finish()

    # -- the supervisor and one session's tasks ----------------------------------------

    async def run(self) -> None:
        """Keep a session open until stopped (4001) or cancelled; run it as one task."""
        backoff = Backoff(
            initial_s=self.options.backoff_initial_s, max_s=self.options.backoff_max_s
        )
        delay = 0.0
        while True:
            if delay > 0:
                await anyio.sleep(delay)
            try:
                session = await self._open()
            except Unauthorized as exc:
                self._stop(exc, None)
                return
            except Exception as exc:
                delay = backoff.next_delay()
                logger.info("connecting to %s failed (%s); retry in %.1f s", self.url, exc, delay)
                continue
            backoff.reset()
            started = anyio.current_time()
            closed = await self._run_session(session)
            action = reconnect_after(closed.close_code)
            if action is Reconnect.STOP:
                self._stop(Unauthorized(f"the server revoked the session: {closed}"), closed)
                return
            self.delivery.push_event(Disconnected(closed.close_code, closed.reason, True))
            stable = anyio.current_time() - started >= _STABLE_SESSION_S
            delay = 0.0 if action is Reconnect.NOW and stable else backoff.next_delay()
            logger.info("disconnected (%s); reconnecting in %.1f s", closed, delay)

    def _stop(self, error: ChatcoreError, closed: ConnectionClosed | None) -> None:
        code = closed.close_code if closed is not None else None
        self.delivery.push_event(
            Disconnected(code, closed.reason if closed else str(error), False, error)
        )
        self.fail(error)

    async def _open(self) -> Session:
        with anyio.fail_after(self.options.connect_timeout_s):
            token = await self._fresh_token()
            return await open_session(
                self._connector,
                self.url,
                subprotocol=self.subprotocol,
                token=token,
                device=self.device,
                request_id=next(self._ids),
                epoch=next(self._epochs),
                max_frame_bytes=self.options.max_frame_bytes,
            )

    async def _fresh_token(self) -> str:
        token = self._token_provider()
        if inspect.isawaitable(token):
            token = await token
        return token

    async def _run_session(self, session: Session) -> ConnectionClosed:
        """Run one session until its transport closes; how it closed."""
        self.user = session.user
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read, session)
                tg.start_soon(self._cancel_when_lost, session, tg.cancel_scope)
                self._session = session
                if self._keys is not None:
                    self._keys.session_opened()
                self._session_changed.notify()
                self.delivery.online = True
                self.delivery.push_event(Connected(session.user, session.device, session.epoch > 1))
                tg.start_soon(self._transmit, session)
                tg.start_soon(self._heartbeat, session)
                tg.start_soon(self._resume, session)
        except Exception as exc:
            logger.exception("session failed; reconnecting")
            session.lose(ConnectionClosed(f"session failed: {exc!r}"))
        finally:
            self.delivery.online = False
            self._session = None
            self._session_changed.notify()
            with anyio.CancelScope(shield=True), anyio.move_on_after(2.0):
                await session.transport.aclose()
        return session.closed_with or ConnectionClosed("connection closed")

    async def _read(self, session: Session) -> None:
        with contextlib.suppress(ConnectionClosed):  # lost: _cancel_when_lost ends the session
            await session.read(self._on_push)

    @staticmethod
    async def _cancel_when_lost(session: Session, scope: anyio.CancelScope) -> None:
        await session.wait_lost()
        scope.cancel()

    async def _transmit(self, session: Session) -> None:
        """Send pending sends oldest first, then receipts; again whenever more are queued."""
        outbox, epoch = self._outbox, session.epoch
        try:
            while True:
                while entry := outbox.next_due(epoch, now=anyio.current_time()):
                    frame = outbox.transmit(
                        entry.frame.client_msg_id, epoch=epoch, request_id=next(self._ids)
                    )
                    await session.send(frame)
                for chat, status, seq in (marks := self._receipts.take()):
                    try:
                        await session.send(Receipt(chat=chat, status=status, seq=seq))
                    except ConnectionClosed:
                        for c, s, q in marks:
                            self._receipts.put(c, s, q)
                        raise
                due_at = outbox.next_due_at(epoch)
                wait = math.inf if due_at is None else due_at - anyio.current_time()
                if wait > 0 and not len(self._receipts):
                    with anyio.move_on_after(wait):
                        await self._outbox_changed.wait()
        except ConnectionClosed:
            pass  # the next session transmits what is left

    async def _heartbeat(self, session: Session) -> None:
        interval = self.options.heartbeat_s or float(session.heartbeat_s)
        while True:
            await anyio.sleep(interval)
            request_id = next(self._ids)
            with anyio.move_on_after(interval) as scope:
                try:
                    await session.request(Ping(id=request_id), request_id)
                except ConnectionClosed:
                    return
            if scope.cancelled_caught:
                session.abort(f"no pong within {interval} s")
                return

    async def _resume(self, session: Session) -> None:
        """After welcome: follow presence again, then catch up from the cursors."""

        async def ask(build: Callable[[int], ClientFrame]) -> ServerFrame:
            return await self.request(build, session=session)

        try:
            users = sorted(self._presence)
            for i in range(0, len(users), MAX_LIST_LENGTH):
                chunk = users[i : i + MAX_LIST_LENGTH]
                answer = await ask(_subscribe_to(chunk))
                states = expect_frame(answer, PresenceFrame).states
                self.delivery.push_event(PresenceChanged(tuple(states)))
            await self.delivery.catch_up(ask)
        except ChatcoreError as exc:
            if not session.lost:
                logger.warning("catching up failed (%s); dropping the connection to retry", exc)
                session.abort(f"catch-up failed: {exc}")

    def _on_push(self, frame: ServerFrame) -> None:
        """A frame no request waits for (the reader calls this; it must not block)."""
        delivery = self.delivery
        match frame:
            case Message():
                delivery.push_message(frame)
            case AcceptedFrame():
                self._settle_send(frame.client_msg_id, frame)
            case ErrorFrame(id=None):
                delivery.push_event(ServerError(error_from_frame(frame)))
            case ErrorFrame(id=int(request_id)):
                cmid = self._outbox.by_request(request_id)
                if cmid is None:
                    return
                if frame.code in WAIT_AND_RETRY:  # not taken: send it again a little later
                    wait_s = (frame.retry_after_ms or 100) / 1000
                    self._outbox.defer(cmid, until=anyio.current_time() + wait_s)
                    self._outbox_changed.notify()
                else:
                    self._settle_send(cmid, frame)
            case ChatFrame(id=None, chat=chat):
                if self._keys is not None:
                    self._keys.chat_changed(chat.chat)
                if self.user is not None and self.user not in chat.members:
                    delivery.timelines.forget(chat.chat)
                else:
                    self.observe(chat)
                delivery.push_event(ChatUpdated(chat))
            case ReceiptUpdate():
                delivery.push_event(
                    ReceiptChanged(frame.chat, frame.user, frame.status, frame.seq, frame.ts)
                )
            case PresenceFrame(id=None):
                delivery.push_event(PresenceChanged(tuple(frame.states)))
            case TypingUpdate():
                delivery.push_event(TypingStarted(frame.chat, frame.user))
            case KeysChanged():
                if self._keys is not None:
                    self._keys.user_keys_changed(frame.user)
                delivery.push_event(DeviceKeysChanged(frame.user, frame.device, frame.version))
            case _:
                logger.debug("ignored an unexpected %s", type(frame).__name__)

    def _settle_send(self, cmid: str, outcome: ServerFrame | ChatcoreError) -> None:
        self._outbox.remove(cmid)
        reply = self._send_replies.pop(cmid, None)
        if reply is None:
            return
        if isinstance(outcome, ChatcoreError):
            reply.fail(outcome)
        else:
            reply.resolve(outcome)


def _subscribe_to(users: list[str]) -> Callable[[int], ClientFrame]:
    return lambda rid: PresenceSubscribe(id=rid, users=users)
