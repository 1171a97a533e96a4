"""The Router: the front door of the pipeline for sends and receipts.

It checks that the user may write to the chat, applies the rate limit, validates the
message, gives it a Snowflake ``message_id`` and appends it to ``chat.submitted``
keyed by chat. It returns only when the log holds the record durably: that is the
"sent ✓" the sender sees. Nothing fails after that point without the log having it.

A retried ``client_msg_id`` is answered with the first copy's ``message_id`` without
a new append when this Router accepted the first copy recently (it remembers the
last ``recent_accepts`` answers) or the first copy is already stored. Only a retry
that reaches another Router while its first copy is still in flight is appended
again; the Sequencer drops it, and its answer carries a ``message_id`` that is
never stored (clients match on ``client_msg_id``).

Membership is checked against a :class:`~chatcore.pipeline.chats.ChatCache`: a chat's
member list is trusted for its ``ttl_s`` (``NodeOptions.membership_cache_ttl_s``), and
changes made through this node's ChatDirectory apply at once (docs/decisions.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from chatcore._clock import wall_ms
from chatcore.e2ee.envelope import decode_envelope
from chatcore.errors import FrameTooLarge, InvalidRequest, NotFound, NotMember
from chatcore.ids import SnowflakeGenerator
from chatcore.log import OutRecord, PartitionedLog
from chatcore.model import (
    EVENT_KINDS,
    Attachment,
    ChatInfo,
    EventKind,
    MessageKind,
    ReceiptStatus,
    StoredMessage,
)
from chatcore.pipeline.attachments import attached_blobs, check_attachment, requested_blob
from chatcore.pipeline.chats import ChatCache
from chatcore.pipeline.lifecycle import LifecycleLimits, check_change
from chatcore.pipeline.records import (
    DEFAULT_TOPICS,
    ReceiptSubmitted,
    Submitted,
    Topics,
    encode,
)
from chatcore.ratelimit import RateLimitHook, apply_rate_limit
from chatcore.store._base import MembershipStore, MessageStore
from chatcore.telemetry import NO_TELEMETRY, Telemetry
from chatcore.telemetry.tracing import Tracing
from chatcore.uploads import UploadLedger

__all__ = ["Accepted", "Router"]


class Accepted(NamedTuple):
    """The answer to a send: the message is durable in the log."""

    chat_id: str
    client_msg_id: str
    message_id: int
    ts: int
    duplicate: bool = False


class Router:
    """Authorises, validates, identifies and durably appends messages and receipts."""

    def __init__(
        self,
        log: PartitionedLog,
        membership: MembershipStore,
        messages: MessageStore,
        ids: SnowflakeGenerator,
        *,
        topics: Topics = DEFAULT_TOPICS,
        rate_limit: RateLimitHook | None = None,
        max_body_bytes: int = 16 * 1024,
        recent_accepts: int = 100_000,
        chats: ChatCache | None = None,
        last_seq: Callable[[str, int], Awaitable[int]] | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
        lifecycle: LifecycleLimits | None = None,
        uploads: UploadLedger | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """``max_body_bytes``: the largest message body, in UTF-8 bytes (16 KiB);
        ``recent_accepts``: how many answers are remembered for retries; ``chats``:
        where chats are looked up (default: the store itself, every time);
        ``last_seq(chat_id, seq)``: the chat's last seq, asked for a receipt up to
        ``seq`` (it may wait for a message sequenced but not yet stored; default: the
        MessageStore's). A receipt beyond it is refused. ``admit()``: asked before a
        new message is appended; it raises (Overloaded) to refuse it (see
        :class:`~chatcore.pipeline.backpressure.Backpressure`). ``lifecycle``: the
        limits on edits and reactions (default: no edit time limit, the body limit
        ``max_body_bytes``). ``uploads``: who uploaded which blob (None: every
        attachment is refused). ``tracing``: OpenTelemetry spans (None: off)."""
        self._log = log
        self._membership = membership
        self._chats = chats or ChatCache(membership, ttl_s=0)
        self._messages = messages
        self._ids = ids
        self._topics = topics
        self._rate_limit = rate_limit
        self._max_body = max_body_bytes
        self._last_seq = last_seq or self._stored_last_seq
        self._admit = admit
        self._clock = clock
        self._telemetry = telemetry
        self._recent: OrderedDict[tuple[str, str, str], Accepted] = OrderedDict()
        self._recent_max = recent_accepts
        self._lifecycle = lifecycle or LifecycleLimits(max_body_bytes=max_body_bytes)
        self._uploads = uploads
        self._tracing = tracing

    async def chat_for(self, user: str, chat_id: str) -> ChatInfo:
        """The chat if ``user`` is a member; raises NotFound or NotMember."""
        chat = await self._chats.member_chat(user, chat_id)
        if chat is None:
            raise NotFound(f"no chat {chat_id!r}")
        if not chat.has_member(user):
            raise NotMember(f"{user!r} is not a member of chat {chat_id!r}")
        return chat

    async def send(
        self,
        user: str,
        chat_id: str,
        *,
        client_msg_id: str,
        body: str,
        kind: MessageKind = "text",
        attachment: Attachment | None = None,
        encrypted: bool = False,
        device: str = "",
        retry: bool = True,
    ) -> Accepted:
        """Append a message durably; raises NotFound, NotMember, RateLimited,
        InvalidRequest, FrameTooLarge, Overloaded or Unavailable (then nothing was
        accepted). A retry of a message already accepted is answered even when
        overloaded.

        An attachment must name a blob ``user`` uploaded (see
        :mod:`chatcore.pipeline.attachments`); its blobs are marked referenced in the
        upload ledger before the append.

        ``retry``: ``client_msg_id`` may have been sent before, so look for an earlier
        stored copy (answered with its ``message_id``). False (a first send) skips
        that store read; the Sequencer still drops a resend within its dedupe window.

        With tracing on, a ``chatcore.send`` span covers it all (see
        :mod:`chatcore.telemetry.tracing`)."""
        args = (user, chat_id, client_msg_id, body, kind, attachment, encrypted, device, retry)
        if self._tracing is None:
            return await self._send(*args, trace="")
        with self._tracing.send({"chatcore.chat": chat_id, "chatcore.user": user}) as span:
            accepted = await self._send(*args, trace=self._tracing.traceparent(span))
            span.set_attribute("chatcore.message_id", str(accepted.message_id))
            span.set_attribute("chatcore.duplicate", accepted.duplicate)
            return accepted

    async def _send(
        self,
        user: str,
        chat_id: str,
        client_msg_id: str,
        body: str,
        kind: MessageKind,
        attachment: Attachment | None,
        encrypted: bool,
        device: str,
        retry: bool,
        *,
        trace: str,
    ) -> Accepted:
        self._validate(client_msg_id, body, kind, attachment)
        if encrypted:  # the shape only: the server holds no key (docs/encryption.md)
            decode_envelope(body)
        blob = requested_blob(kind, attachment)
        await self.chat_for(user, chat_id)
        if self._rate_limit is not None:
            await apply_rate_limit(self._rate_limit, user, chat_id)
        key = (chat_id, user, client_msg_id)
        recent = self._recent.get(key)
        if recent is not None:
            return recent._replace(duplicate=True)
        if retry:  # only a resend can have a copy in history
            first = await self._messages.find_client_msg(chat_id, user, client_msg_id)
            if first is not None:
                return Accepted(chat_id, client_msg_id, first.message_id, first.ts, duplicate=True)
        if self._admit is not None:
            await self._admit()
        if attachment is not None and blob is not None:
            if self._uploads is None:
                raise InvalidRequest("this node takes no attachments (no upload ledger)")
            upload = await self._uploads.get(user, blob)
            attachment = check_attachment(user, kind, attachment, upload)
            await self._uploads.reference(attached_blobs(attachment))
        submitted = Submitted(
            message_id=self._ids.next_id(),
            chat_id=chat_id,
            sender=user,
            client_msg_id=client_msg_id,
            kind=kind,
            body=body,
            ts=self._clock(),
            attachment=attachment,
            encrypted=encrypted,
            sender_device=device,
            trace=trace,
        )
        await self._log.append([OutRecord(self._topics.submitted, chat_id, encode(submitted))])
        self._telemetry.stage_done("logged", (submitted.ts,), self._clock())
        accepted = Accepted(chat_id, client_msg_id, submitted.message_id, submitted.ts)
        self._recent[key] = accepted
        if len(self._recent) > self._recent_max:
            self._recent.popitem(last=False)
        return accepted

    async def change(
        self,
        user: str,
        chat_id: str,
        kind: EventKind,
        target: int,
        *,
        body: str = "",
        encrypted: bool = False,
        device: str = "",
    ) -> Accepted:
        """Append a lifecycle event (edit, delete, react, unreact) of message ``target``
        durably, after the rules of :mod:`chatcore.pipeline.lifecycle`; raises NotFound
        (no such chat or message), NotMember, InvalidRequest (a rule broken),
        FrameTooLarge, RateLimited, Overloaded or Unavailable: then nothing was
        appended. Every member gets the event as a message of that ``kind``."""
        if target < 1:
            raise InvalidRequest(f"target seq must be >= 1, got {target}")
        if encrypted and kind == "edit":  # an encrypted edit's body is an envelope too
            decode_envelope(body)
        chat = await self.chat_for(user, chat_id)
        if self._rate_limit is not None:
            await apply_rate_limit(self._rate_limit, user, chat_id)
        message = await self._message_at(chat_id, target)
        if message is not None and message.seq <= chat.visible_after(user):
            message = None  # sent before this member joined: not theirs to see
        now = self._clock()
        check_change(chat, user, message, kind, body, now_ms=now, limits=self._lifecycle)
        if self._admit is not None:
            await self._admit()
        message_id = self._ids.next_id()
        submitted = Submitted(
            message_id=message_id,
            chat_id=chat_id,
            sender=user,
            client_msg_id=f"{kind}-{message_id}",
            kind=kind,
            body=body,
            ts=now,
            encrypted=encrypted and kind == "edit",
            sender_device=device,
            target=target,
        )
        await self._log.append([OutRecord(self._topics.submitted, chat_id, encode(submitted))])
        return Accepted(chat_id, submitted.client_msg_id, message_id, now)

    async def _message_at(self, chat_id: str, seq: int) -> StoredMessage | None:
        """The stored message at ``seq`` (waiting for one sequenced but not yet stored)."""
        if seq > await self._last_seq(chat_id, seq):
            return None
        found = await self._messages.range(chat_id, after=seq - 1, limit=1)
        return found[0] if found and found[0].seq == seq else None

    async def receipt(self, user: str, chat_id: str, status: ReceiptStatus, seq: int) -> None:
        """Append a cumulative receipt durably; raises NotFound, NotMember, InvalidRequest
        (also for a seq beyond the chat's last message: nothing is appended) or
        Overloaded."""
        if seq < 0:
            raise InvalidRequest(f"seq must be >= 0, got {seq}")
        await self.chat_for(user, chat_id)
        if seq > 0:
            last = await self._last_seq(chat_id, seq)
            if seq > last:
                raise InvalidRequest(
                    f"seq {seq} is beyond the last message of chat {chat_id!r} ({last})"
                )
        record = ReceiptSubmitted(chat_id, user, status, seq, self._clock())
        await self._log.append([OutRecord(self._topics.receipts, chat_id, encode(record))])

    async def _stored_last_seq(self, chat_id: str, seq: int) -> int:
        return await self._messages.last_seq(chat_id)

    def _validate(
        self, client_msg_id: str, body: str, kind: MessageKind, attachment: Attachment | None
    ) -> None:
        if not client_msg_id:
            raise InvalidRequest("client_msg_id must not be empty")
        if kind in EVENT_KINDS:
            raise InvalidRequest(f"a {kind} is not sent: use Router.change")
        if len(body.encode()) > self._max_body:
            raise FrameTooLarge(f"message body over {self._max_body} bytes")
        if kind == "text" and attachment is None and not body:
            raise InvalidRequest("a text message needs a body")
