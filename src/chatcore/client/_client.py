"""ChatClient: the public face of the SDK; the work happens in ``_connection`` and ``_delivery``.

Inside ``async with`` two background tasks run under one cancel scope: the
connection's supervisor (one session after another) and the delivery task
(events to the app in order). ``aclose()`` cancels that scope only, never the
app's own code in the ``async with`` block.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import anyio.lowlevel

from chatcore.client._connection import ReconnectingConnection, TokenProvider
from chatcore.client._delivery import Delivery
from chatcore.client._e2ee import EndToEnd
from chatcore.client._errors import error_from_frame, expect_frame
from chatcore.client._events import ClientEvent, MessageReceived
from chatcore.client._media import DEFAULT_DOWNLOAD_MAX_BYTES, MediaTransfer, MediaUpload, http_base
from chatcore.client._options import ClientOptions
from chatcore.client._state import Timelines
from chatcore.client._transport import Connector, Transport, connect_websocket
from chatcore.errors import ChatcoreClosed, ChatcoreError, InvalidRequest, Unavailable
from chatcore.protocol import (
    MAX_LIST_LENGTH,
    SUBPROTOCOL_JSON,
    SUBPROTOCOLS,
    AcceptedFrame,
    AttachmentView,
    ChatCreate,
    ChatFrame,
    ChatList,
    ChatMembers,
    ChatSummary,
    ChatView,
    ClientFrame,
    Delete,
    DeviceKeyView,
    Edit,
    ErrorFrame,
    History,
    HistoryPageFrame,
    KeysFetch,
    KeysFrame,
    KeysRevoke,
    ListChats,
    Message,
    MessageKind,
    Ok,
    Ping,
    Pong,
    PresenceFrame,
    PresenceSubscribe,
    PresenceUnsubscribe,
    PresenceView,
    PushKeysView,
    PushRegister,
    PushUnregister,
    React,
    Send,
    ServerFrame,
    Typing,
    Unreact,
)
from chatcore.protocol.fields import PushKindName

__all__ = ["ChatClient", "TokenProvider"]

logger = logging.getLogger(__name__)


class ChatClient:
    """A device's connection to a chatcore server, kept alive across network trouble.

    Use it as an async context manager: entering connects (and raises Unauthorized
    for a refused token, or Unavailable if no session opens within
    ``options.connect_timeout_s``); leaving closes. Read what arrives from
    :meth:`events` (or ``async for event in client``).
    """

    def __init__(
        self,
        url: str,
        *,
        device: str,
        token: str | None = None,
        token_provider: TokenProvider | None = None,
        subprotocol: str = SUBPROTOCOL_JSON,
        cursors: Mapping[str, int] | None = None,
        options: ClientOptions | None = None,
        connector: Connector | None = None,
        keyring: str | Path | None = None,
    ) -> None:
        """``url``: the server's WebSocket endpoint, e.g. ``ws://host:8000/ws``.

        ``device``: this device's id. ``token`` or ``token_provider`` (called before each
        connection attempt, may be async): the credentials. ``subprotocol``:
        ``chatcore.v1.json`` (default) or ``chatcore.v1.msgpack``. ``cursors``: the
        last seq the app already holds per chat, so only newer messages are delivered.
        ``connector``: opens the transport (default: a WebSocket). ``keyring``: the file
        of this device's end-to-end encryption keys (made if missing; needs the ``e2ee``
        extra): its key is published on entering, ``send(..., encrypted=True)`` seals the
        text for every member's devices and encrypted messages arrive opened
        (docs/encryption.md). Raise ValueError for a missing or doubled credential or an
        unknown subprotocol, InvalidRequest for a keyring file of another device.
        """
        if (token is None) == (token_provider is None):
            raise ValueError("give exactly one of `token` and `token_provider`")
        if subprotocol not in SUBPROTOCOLS:
            raise ValueError(f"subprotocol must be one of {', '.join(SUBPROTOCOLS)}")
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"not a WebSocket URL: {url!r}")
        self.url = url
        self.device = device
        self.options = opts = options or ClientOptions()
        if token_provider is None:
            assert token is not None  # checked above
            token_provider = _fixed_token(token)
        self.e2ee = None if keyring is None else EndToEnd(keyring, device)
        """This device's end-to-end encryption state (None without a keyring)."""
        self._delivery = Delivery(
            Timelines(cursors, max_buffered=opts.max_buffered, backfill_limit=opts.backfill_limit),
            queue_size=opts.event_queue,
            history_page=opts.history_page,
            ask=lambda build: self._link.request(build, retry=False),
            reveal=self._reveal,
        )
        self._link = ReconnectingConnection(
            url,
            device=device,
            subprotocol=subprotocol,
            token_provider=token_provider,
            connector=connector or self._websocket,
            options=opts,
            delivery=self._delivery,
            keys=self.e2ee,
        )
        self._media = MediaTransfer(http_base(url), token_provider, timeout_s=30.0)
        self._background = anyio.CancelScope()
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        token: str,
        device: str,
        subprotocol: str = SUBPROTOCOL_JSON,
        cursors: Mapping[str, int] | None = None,
        options: ClientOptions | None = None,
        keyring: str | Path | None = None,
    ) -> ChatClient:
        """A client with a fixed token, to enter with ``async with``; raise ValueError as the
        constructor does."""
        return cls(
            url,
            token=token,
            device=device,
            subprotocol=subprotocol,
            cursors=cursors,
            options=options,
            keyring=keyring,
        )

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        """Connect; raise Unauthorized, or Unavailable if no session opens in time."""
        if self._tg is not None or self._closed:
            raise RuntimeError("a ChatClient can be entered only once")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(self._run_background)
        try:
            with anyio.fail_after(self.options.connect_timeout_s):
                await self._link.wait_session()
            if self.e2ee is not None:
                assert self._link.user is not None  # set by welcome
                await self.e2ee.publish(self._ask, self._link.user)
        except BaseException as exc:
            await self.__aexit__(None, None, None)
            if isinstance(exc, TimeoutError):
                raise Unavailable(
                    f"no session with {self.url} within {self.options.connect_timeout_s} s"
                ) from exc
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):  # also when the block was cancelled
            await self.aclose()
        tg, self._tg = self._tg, None
        if tg is not None:  # the background was cancelled by aclose(); wait for it to end
            await tg.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Close the connection and stop; pending calls raise ChatcoreClosed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._link.fail(ChatcoreClosed("the client is closed"))
        self._background.cancel()
        await anyio.lowlevel.checkpoint()

    @property
    def connected(self) -> bool:
        """Whether a session is open right now."""
        return self._link.connected

    @property
    def user(self) -> str | None:
        """The user the server welcomed this device as (None before the first session)."""
        return self._link.user

    def cursors(self) -> dict[str, int]:
        """The last seq delivered to the app per chat; persist it, pass it back as ``cursors``."""
        return self._delivery.timelines.cursors()

    def events(self) -> AsyncIterator[ClientEvent]:
        """The stream of events, in order; it ends when the client closes or stops."""
        return self._delivery.events

    def __aiter__(self) -> AsyncIterator[ClientEvent]:
        return self._delivery.events

    # -- messages --------------------------------------------------------------------

    async def send(
        self,
        chat: str,
        body: str = "",
        *,
        kind: MessageKind = "text",
        attachment: AttachmentView | None = None,
        encrypted: bool = False,
        client_msg_id: str | None = None,
    ) -> AcceptedFrame:
        """Send a message; return once the server has it durably.

        Retried with the same ``client_msg_id`` across reconnects until accepted
        (sending an id that is still pending joins that send); a ``rate_limited``
        answer is waited out and the send goes out again, with the sends queued
        after it kept in order. Raises InvalidRequest for a media kind without an
        attachment, the server's error (NotMember, NotFound, FrameTooLarge, ...),
        Unavailable if not accepted within ``options.send_timeout_s`` (it may still
        be stored: retry with the same ``client_msg_id``), ChatcoreClosed or
        Unauthorized if the client stopped. Cancelling the call leaves the send
        pending: it is still retried until accepted.

        ``encrypted``: with a keyring, ``body`` is the text to seal for every device key
        of the chat's members, fetched before the first sealed send to the chat and kept
        until a ``keys.changed`` or ``chat`` push or a reconnect may have made them stale
        (InvalidRequest naming the members without any key; nothing is sent); without
        one, ``body`` must already be a v1 envelope.
        """
        self._check_usable()
        cmid = client_msg_id or uuid.uuid4().hex
        if encrypted and self.e2ee is not None:
            user = self._link.user
            assert user is not None  # welcomed before entering returned
            body = await self.e2ee.seal(self._ask, chat=chat, user=user, text=body)
        try:
            frame = Send(
                id=0,
                chat=chat,
                client_msg_id=cmid,
                kind=kind,
                body=body,
                attachment=attachment,
                encrypted=encrypted,
                retry=client_msg_id is not None,  # the app's own id: it may be a resend
            )
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from exc
        answer = await self._link.send(frame)
        if isinstance(answer, ErrorFrame):
            raise error_from_frame(answer)
        return expect_frame(answer, AcceptedFrame)

    async def edit(
        self, chat: str, seq: int, body: str, *, encrypted: bool = False
    ) -> AcceptedFrame:
        """Replace the body of this user's message ``seq`` (every member gets an ``edit``
        message); raises InvalidRequest (not the author, past the edit window, deleted),
        NotFound (no such message), FrameTooLarge, NotMember, Unavailable.

        ``encrypted``: as for :meth:`send` (with a keyring, ``body`` is the text to seal)."""
        if encrypted and self.e2ee is not None:
            user = self._link.user
            assert user is not None  # welcomed before entering returned
            body = await self.e2ee.seal(self._ask, chat=chat, user=user, text=body)
        answer = await self._request(
            lambda rid: Edit(id=rid, chat=chat, seq=seq, body=body, encrypted=encrypted)
        )
        return expect_frame(answer, AcceptedFrame)

    async def delete(self, chat: str, seq: int) -> AcceptedFrame:
        """Delete message ``seq`` for everyone (the author, or a group's admin); raises
        InvalidRequest, NotFound, NotMember, or Unavailable (not retried: it may have
        been deleted; look at the history)."""
        answer = await self._request(lambda rid: Delete(id=rid, chat=chat, seq=seq), retry=False)
        return expect_frame(answer, AcceptedFrame)

    async def react(
        self, chat: str, seq: int, emoji: str, *, remove: bool = False
    ) -> AcceptedFrame:
        """Add (``remove``: take back) this user's ``emoji`` reaction to message ``seq``;
        raises InvalidRequest (not one emoji), NotFound, NotMember, Unavailable."""

        def frame(rid: int) -> ClientFrame:
            if remove:
                return Unreact(id=rid, chat=chat, seq=seq, emoji=emoji)
            return React(id=rid, chat=chat, seq=seq, emoji=emoji)

        return expect_frame(await self._request(frame), AcceptedFrame)

    # -- media ----------------------------------------------------------------------

    async def upload(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        name: str | None = None,
        kind: str | None = None,
    ) -> MediaUpload:
        """Upload a file (a path, streamed) or bytes over HTTP with this client's token.

        ``kind`` (``image``, ``video``, ``audio``, ``file``; None: the server picks it
        from the bytes) sets the size limit and the types accepted. Send it with
        ``send(chat, kind=up.message_kind, attachment=up.attachment())`` or use
        :meth:`send_media`. Raises BlobTooLarge, InvalidRequest (a type the kind does
        not accept, a missing file), Unauthorized, Unavailable. Needs httpx
        (``pip install 'chatcore[client]'``).
        """
        return await self._media.upload(source, name=name, kind=kind)

    async def send_media(
        self,
        chat: str,
        source: bytes | str | os.PathLike[str],
        body: str = "",
        *,
        name: str | None = None,
        kind: str | None = None,
    ) -> AcceptedFrame:
        """:meth:`upload` then :meth:`send` it as an image, video or file message."""
        up = await self.upload(source, name=name, kind=kind)
        return await self.send(chat, body, kind=up.message_kind, attachment=up.attachment())

    async def download(
        self,
        target: Message | AttachmentView | str,
        *,
        thumbnail: bool = False,
        max_bytes: int = DEFAULT_DOWNLOAD_MAX_BYTES,
    ) -> bytes:
        """The bytes of a received message's attachment (or its ``thumbnail``), of an
        attachment, or at a signed URL. A message's expired link is renewed once.

        Raises BlobTooLarge over ``max_bytes``, Unauthorized for an expired or forged
        URL, NotFound, NotMember, Unavailable.
        """
        return await self._media.download(target, thumbnail=thumbnail, max_bytes=max_bytes)

    async def mark_delivered(self, chat: str, seq: int) -> None:
        """Tell the chat this user received it up to ``seq`` (queued while offline).

        Raises InvalidRequest for a negative seq, ChatcoreClosed once closed.
        """
        self._check_usable()
        self._link.receipt(chat, "delivered", seq)

    async def mark_read(self, chat: str, seq: int) -> None:
        """Tell the chat this user read it up to ``seq`` (implies delivered; queued while offline).

        Raises InvalidRequest for a negative seq, ChatcoreClosed once closed.
        """
        self._check_usable()
        self._link.receipt(chat, "read", seq)

    async def typing(self, chat: str) -> None:
        """Tell the chat's online members this user is typing; dropped while offline.

        Raises ChatcoreClosed once closed.
        """
        self._check_usable()
        await self._link.send_if_connected(Typing(chat=chat))

    # -- chats -----------------------------------------------------------------------

    async def chats(self) -> list[ChatSummary]:
        """Every chat of this user with watermarks and unread count; raises Unavailable."""
        chats = expect_frame(await self._request(lambda rid: ListChats(id=rid)), ChatList).chats
        for chat in chats:
            self._link.observe(chat)
        return chats

    async def create_direct(self, user: str) -> ChatView:
        """The direct chat with ``user`` (created if needed); raises the server's error."""
        answer = await self._request(
            lambda rid: ChatCreate(id=rid, kind="direct", members=[user]), retry=True
        )
        return self._link.observe(expect_frame(answer, ChatFrame).chat)

    async def create_group(
        self, title: str, members: Sequence[str], *, history_visible: bool = True
    ) -> ChatView:
        """A new group with this user (its creator and first admin) and ``members``;
        ``history_visible``: whether members added later see earlier messages. Raises
        InvalidRequest (too many members), the server's other errors, or Unavailable
        (not retried: a retry could create two)."""
        answer = await self._request(
            lambda rid: ChatCreate(
                id=rid,
                kind="group",
                title=title,
                members=list(members),
                history_visible=history_visible,
            ),
            retry=False,
        )
        return self._link.observe(expect_frame(answer, ChatFrame).chat)

    async def update_members(
        self,
        chat: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        promote: Sequence[str] = (),
        demote: Sequence[str] = (),
        history_visible: bool | None = None,
    ) -> ChatView:
        """Change a group's members, admins or options (docs/groups.md); raises
        NotMember, NotFound, or InvalidRequest when a rule forbids it (only admins
        change others; nothing changed)."""
        answer = await self._request(
            lambda rid: ChatMembers(
                id=rid,
                chat=chat,
                add=list(add),
                remove=list(remove),
                promote=list(promote),
                demote=list(demote),
                history_visible=history_visible,
            )
        )
        return self._link.observe(expect_frame(answer, ChatFrame).chat)

    async def leave(self, chat: str) -> ChatView:
        """Leave a group (the last admin leaving promotes the longest-standing member);
        raises Unavailable before the first session (the user is not known yet)."""
        if self.user is None:
            raise Unavailable("not connected yet: the server has not named this user")
        return await self.update_members(chat, remove=[self.user])

    # -- history ---------------------------------------------------------------------

    async def history_page(
        self, chat: str, *, before: int | None = None, after: int | None = None, limit: int = 50
    ) -> HistoryPageFrame:
        """One page, ascending by seq: before ``before``, after ``after``, or the latest.

        Raises InvalidRequest for both bounds or a limit outside 1..200, NotMember,
        NotFound, Unavailable.
        """
        if not 1 <= limit <= 200:
            raise InvalidRequest("limit must be within 1..200")
        if before is not None and after is not None:
            raise InvalidRequest("give `before` or `after`, not both")
        answer = await self._request(
            lambda rid: History(id=rid, chat=chat, before=before, after=after, limit=limit)
        )
        return expect_frame(answer, HistoryPageFrame)

    async def history(
        self, chat: str, *, before: int | None = None, after: int | None = None, page: int = 50
    ) -> AsyncIterator[Message]:
        """Every message of a chat, a page at a time.

        Without ``after``: backwards, newest first, from ``before`` (exclusive) or the
        latest message. With ``after``: forwards, oldest first, from ``after + 1`` to
        the latest. Raises what :meth:`history_page` raises.
        """
        if after is not None:
            cursor = after
            while True:
                got = await self.history_page(chat, after=cursor, limit=page)
                for message in got.messages:
                    yield message
                if not got.has_more or not got.messages:
                    return
                cursor = got.messages[-1].seq
        upper = before
        while True:
            got = await self.history_page(chat, before=upper, limit=page)
            for message in reversed(got.messages):
                yield message
            if not got.has_more or not got.messages:
                return
            upper = got.messages[0].seq

    # -- presence --------------------------------------------------------------------

    async def subscribe_presence(self, users: Sequence[str]) -> list[PresenceView]:
        """Follow users' presence (again after every reconnect); their current states.

        Changes arrive as ``PresenceChanged`` events. Raises Unauthorized for a user
        who shares no chat with this one, InvalidRequest for too many users.
        """
        if len(users) > MAX_LIST_LENGTH:
            raise InvalidRequest(f"at most {MAX_LIST_LENGTH} users per call")
        answer = await self._request(lambda rid: PresenceSubscribe(id=rid, users=list(users)))
        self._link.follow_presence(users, follow=True)
        return expect_frame(answer, PresenceFrame).states

    async def unsubscribe_presence(self, users: Sequence[str]) -> None:
        """Stop following users' presence; raises Unavailable."""
        self._link.follow_presence(users, follow=False)
        expect_frame(
            await self._request(lambda rid: PresenceUnsubscribe(id=rid, users=list(users))), Ok
        )

    async def ping(self) -> float:
        """Round-trip time to the server in seconds; raises Unavailable."""
        started = anyio.current_time()
        expect_frame(await self._request(lambda rid: Ping(id=rid)), Pong)
        return anyio.current_time() - started

    # -- push targets ----------------------------------------------------------------

    async def register_push(
        self, kind: PushKindName, token: str, *, keys: PushKeysView | None = None
    ) -> None:
        """Have the server push to this device while it is offline (replaces its target).

        ``token``: the Web Push subscription's endpoint (then ``keys`` are its ``p256dh``
        and ``auth``), the FCM registration token or the APNs device token (hex). Kept
        by the server across reconnects. Raises InvalidRequest for a target the server
        refuses (nothing is stored then), Unavailable.
        """
        frame = await self._request(
            lambda rid: PushRegister(id=rid, kind=kind, token=token, keys=keys)
        )
        expect_frame(frame, Ok)

    async def unregister_push(self) -> None:
        """Stop push notifications to this device (fine if none were registered)."""
        expect_frame(await self._request(lambda rid: PushUnregister(id=rid)), Ok)

    # -- end-to-end encryption keys ----------------------------------------------------

    async def rotate_key(self) -> int:
        """Make this device a new key pair, keep it in the keyring and publish it; its
        version. Older pairs stay so that older messages still open. Raises
        InvalidRequest without a keyring."""
        if self.e2ee is None:
            raise InvalidRequest("this client has no keyring")
        self._check_usable()
        return await self.e2ee.rotate(self._ask)

    async def fetch_keys(self, users: Sequence[str]) -> dict[str, list[DeviceKeyView]]:
        """The published device keys of ``users`` (each shares a chat with this user, or
        is this user), e.g. to show fingerprints people compare
        (:func:`chatcore.e2ee.scheme.fingerprint`). Raises Unauthorized, InvalidRequest."""
        answer = await self._request(lambda rid: KeysFetch(id=rid, users=list(users)))
        return {entry.user: entry.devices for entry in expect_frame(answer, KeysFrame).users}

    async def revoke_key(self, device: str | None = None) -> None:
        """Forget the published key of one of this user's devices (this one when
        ``device`` is None; fine if it had none): others stop sealing for it, and get a
        ``keys.changed`` push. This device publishes its key again when it reconnects."""
        expect_frame(await self._request(lambda rid: KeysRevoke(id=rid, device=device)), Ok)

    # -- internals -------------------------------------------------------------------

    async def _ask(self, build: Callable[[int], ClientFrame]) -> ServerFrame:
        return await self._request(build)

    def _reveal(self, message: Message) -> MessageReceived:
        if self.e2ee is None:
            return MessageReceived(message)
        return self.e2ee.open(message, self._link.user)

    async def _request(
        self, build: Callable[[int], ClientFrame], *, retry: bool = True
    ) -> ServerFrame:
        self._check_usable()
        return await self._link.request(build, retry=retry)

    def _check_usable(self) -> None:
        if self._link.fatal is not None:
            raise self._link.fatal
        if self._tg is None:
            raise ChatcoreClosed("the client is not open: use `async with`")

    async def _run_background(self) -> None:
        with self._background:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._delivery.run)
                    tg.start_soon(self._link.run)
            except Exception as exc:  # a bug: stop cleanly rather than cancel the app's block
                logger.exception("the client stopped on an internal error")
                self._link.fail(ChatcoreError(f"internal error in the client: {exc!r}"))

    async def _websocket(self, url: str, subprotocols: Sequence[str]) -> Transport:
        return await connect_websocket(
            url,
            subprotocols,
            open_timeout_s=self.options.connect_timeout_s,
            max_frame_bytes=self.options.max_frame_bytes,
        )


def _fixed_token(token: str) -> TokenProvider:
    return lambda: token
