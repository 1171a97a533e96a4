"""Every frame of wire protocol v1 as a ``msgspec.Struct``, in two tagged unions.

Each frame is an object whose ``type`` field is the tag. Client and server frames
that share a ``type`` (``chats``, ``history``, ``receipt``, ``typing``) have
different shapes, so they are separate classes in separate unions:
:data:`ClientFrame` is what a server decodes, :data:`ServerFrame` what a client
decodes.

Schema evolution: unknown fields are ignored and every field added after v1 gets
a default. Fields with a default are left out when encoded if they hold it (so a
push carries no ``"id": null``); required fields, ``title: null`` included, are
always present.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, TypeAlias

import msgspec

from chatcore.errors import ErrorCode
from chatcore.protocol.fields import (
    MAX_LIST_LENGTH,
    AttachmentView,
    ChatId,
    ChatKind,
    ChatSummary,
    ChatView,
    ClientMsgId,
    Count,
    DeviceId,
    Emoji,
    EventKind,
    KeyVersion,
    MessageId,
    MessageKind,
    PresenceView,
    PublicKey,
    PushKeysView,
    PushKindName,
    ReactionView,
    ReceiptStatus,
    RequestId,
    Seq,
    SyncedChat,
    TimestampMs,
    Title,
    UserId,
    UserKeysView,
    Users,
    WireObject,
)

__all__ = [
    # client frames
    "ChatCreate",
    "ChatMembers",
    "Hello",
    "History",
    "ListChats",
    "Ping",
    "PresenceSubscribe",
    "PresenceUnsubscribe",
    "Receipt",
    "Send",
    "Edit",
    "Delete",
    "React",
    "Unreact",
    "Sync",
    "Typing",
    "PushRegister",
    "PushUnregister",
    "KeysPublish",
    "KeysFetch",
    "KeysRevoke",
    # server frames
    "AcceptedFrame",
    "ChatFrame",
    "ChatList",
    "ErrorFrame",
    "HistoryPageFrame",
    "Message",
    "Ok",
    "Pong",
    "PresenceFrame",
    "ReceiptUpdate",
    "Synced",
    "TypingUpdate",
    "Welcome",
    "KeysChanged",
    "KeysFrame",
    # unions
    "CLIENT_FRAME_TYPES",
    "ClientFrame",
    "SERVER_FRAME_TYPES",
    "ServerFrame",
]


class _Frame(WireObject, tag_field="type", omit_defaults=True):
    """Base of every frame: tagged by ``type``, fields holding their default omitted."""


# --- client frames -----------------------------------------------------------


class Hello(_Frame, tag="hello", kw_only=True):
    """The first frame of a session: authenticate a device."""

    id: RequestId
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]
    device: DeviceId
    batch: bool = False
    """The client reads batches: a server may send several frames as one WebSocket
    message holding an array of frames (see "Batches" in the protocol)."""


class Ping(_Frame, tag="ping", kw_only=True):
    """Keep-alive; answered by ``pong``."""

    id: RequestId


class ChatCreate(_Frame, tag="chat.create", kw_only=True):
    """Create a chat (a direct chat that exists is returned instead)."""

    id: RequestId
    kind: ChatKind
    members: Users
    title: Title | None = None
    history_visible: bool = True
    """A group: whether members added later see the messages sent before they joined."""


class ChatMembers(_Frame, tag="chat.members", kw_only=True):
    """Change a group: members, admins, options (docs/groups.md).

    Anyone may remove themselves (leave); only an admin adds or removes others,
    promotes, demotes or sets ``history_visible``.
    """

    id: RequestId
    chat: ChatId
    add: Users = msgspec.field(default_factory=list)
    remove: Users = msgspec.field(default_factory=list)
    promote: Users = msgspec.field(default_factory=list)
    demote: Users = msgspec.field(default_factory=list)
    history_visible: bool | None = None


class ListChats(_Frame, tag="chats", kw_only=True):
    """Ask for the user's chats with their watermarks."""

    id: RequestId


class Send(_Frame, tag="send", kw_only=True):
    """Send a message; ``client_msg_id`` makes a retry idempotent.

    ``retry``: this ``client_msg_id`` may have been sent before (a resend after a drop or
    a timeout). Only then does the server look for an earlier stored copy; a first send
    skips that read. The Sequencer drops a resend within its dedupe window either way.
    """

    id: RequestId
    chat: ChatId
    client_msg_id: ClientMsgId
    kind: MessageKind
    body: str = ""
    attachment: AttachmentView | None = None
    encrypted: bool = False
    retry: bool = False

    def __post_init__(self) -> None:
        if self.kind != "text" and self.attachment is None:
            raise ValueError(f"a `{self.kind}` message needs an `attachment`")


class Edit(_Frame, tag="edit", kw_only=True):
    """Replace the body of the user's own message ``seq`` (answered ``accepted``)."""

    id: RequestId
    chat: ChatId
    seq: Seq
    body: str
    encrypted: bool = False


class Delete(_Frame, tag="delete", kw_only=True):
    """Delete message ``seq`` for everyone: its author, or a group's admin."""

    id: RequestId
    chat: ChatId
    seq: Seq


class React(_Frame, tag="react", kw_only=True):
    """Add the user's ``emoji`` reaction to message ``seq``."""

    id: RequestId
    chat: ChatId
    seq: Seq
    emoji: Emoji


class Unreact(_Frame, tag="unreact", kw_only=True):
    """Take back the user's ``emoji`` reaction to message ``seq``."""

    id: RequestId
    chat: ChatId
    seq: Seq
    emoji: Emoji


class History(_Frame, tag="history", kw_only=True):
    """Ask for up to ``limit`` messages before or after a seq (the latest if neither)."""

    id: RequestId
    chat: ChatId
    before: Seq | None = None
    after: Seq | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50

    def __post_init__(self) -> None:
        if self.before is not None and self.after is not None:
            raise ValueError("give `before` or `after`, not both")


class Sync(_Frame, tag="sync", kw_only=True):
    """Catch up from per-chat cursors (the last seq held); without them, every chat."""

    id: RequestId
    cursors: Annotated[dict[ChatId, Seq], msgspec.Meta(max_length=MAX_LIST_LENGTH)] | None = None


class Receipt(_Frame, tag="receipt", kw_only=True):
    """Mark a chat delivered or read up to ``seq``."""

    id: RequestId | None = None
    chat: ChatId
    status: ReceiptStatus
    seq: Seq


class PresenceSubscribe(_Frame, tag="presence.subscribe", kw_only=True):
    """Follow the presence of users."""

    id: RequestId
    users: Users


class PresenceUnsubscribe(_Frame, tag="presence.unsubscribe", kw_only=True):
    """Stop following the presence of users."""

    id: RequestId
    users: Users


class Typing(_Frame, tag="typing", kw_only=True):
    """Tell the chat's online members that the user is typing."""

    id: RequestId | None = None
    chat: ChatId


class PushRegister(_Frame, tag="push.register", kw_only=True):
    """Reach this device by ``kind`` while it is offline (replaces its earlier target).

    ``token``: the Web Push subscription's ``endpoint``, the FCM registration token or
    the APNs device token (hex); ``keys`` only for ``webpush``.
    """

    id: RequestId
    kind: PushKindName
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    keys: PushKeysView | None = None


class PushUnregister(_Frame, tag="push.unregister", kw_only=True):
    """Stop pushing to this device (fine if it registered nothing)."""

    id: RequestId


class KeysPublish(_Frame, tag="keys.publish", kw_only=True):
    """Publish this device's public key for end-to-end encryption; a higher ``version``
    rotates it (docs/encryption.md). Answered by ``ok``."""

    id: RequestId
    version: KeyVersion
    public_key: PublicKey


class KeysFetch(_Frame, tag="keys.fetch", kw_only=True):
    """Ask for the device keys of ``users`` (each must share a chat with the caller, or
    be the caller), or of every member of ``chat`` (the caller's included). Answered by
    ``keys``."""

    id: RequestId
    users: Users = msgspec.field(default_factory=list)
    chat: ChatId | None = None

    def __post_init__(self) -> None:
        if (self.chat is None) == (not self.users):
            raise ValueError("give `users` or `chat`, one of them")


class KeysRevoke(_Frame, tag="keys.revoke", kw_only=True):
    """Forget the key of one of the caller's devices (this one when ``device`` is absent).
    Answered by ``ok``."""

    id: RequestId
    device: DeviceId | None = None


# --- server frames -----------------------------------------------------------


class Welcome(_Frame, tag="welcome", kw_only=True):
    """The answer to ``hello``: the session is open."""

    id: RequestId
    user: UserId
    device: DeviceId
    heartbeat_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)]


class Pong(_Frame, tag="pong", kw_only=True):
    """The answer to ``ping``."""

    id: RequestId


class ChatFrame(_Frame, tag="chat", kw_only=True):
    """A chat: the answer to ``chat.create``/``chat.members`` (with ``id``) or a push."""

    id: RequestId | None = None
    chat: ChatView


class ChatList(_Frame, tag="chats", kw_only=True):
    """The answer to ``chats``."""

    id: RequestId
    chats: list[ChatSummary]


class AcceptedFrame(_Frame, tag="accepted", kw_only=True):
    """The answer to ``send`` once the message is durable."""

    id: RequestId
    chat: ChatId
    client_msg_id: ClientMsgId
    message_id: MessageId


class Message(_Frame, tag="message", kw_only=True):
    """A stored message or lifecycle event, pushed to every device of every member.

    An event (``kind`` ``edit``, ``delete``, ``react``, ``unreact``) changes message
    ``target``: ``body`` holds the new body (``edit``) or the emoji (reactions).
    A message in ``history`` or ``sync`` comes in its current state: ``edited_ts``
    (when last edited), ``deleted`` (a tombstone: no body, no attachment) and
    ``reactions``; ``changed_seq`` names the last event in it.
    """

    chat: ChatId
    seq: Seq
    message_id: MessageId
    sender: UserId
    client_msg_id: ClientMsgId
    kind: MessageKind | EventKind
    body: str
    ts: TimestampMs
    attachment: AttachmentView | None = None
    encrypted: bool = False
    target: Seq | None = None
    edited_ts: TimestampMs | None = None
    deleted: bool = False
    reactions: Annotated[list[ReactionView], msgspec.Meta(max_length=MAX_LIST_LENGTH)] = (
        msgspec.field(default_factory=list)
    )
    changed_seq: Seq | None = None
    """The last event already applied to this state: a client skips events up to it."""


class HistoryPageFrame(_Frame, tag="history", kw_only=True):
    """The answer to ``history``: messages ascending by seq."""

    id: RequestId
    chat: ChatId
    messages: list[Message]
    has_more: bool


class Synced(_Frame, tag="synced", kw_only=True):
    """Ends the answer to ``sync``, after the missed ``message`` frames."""

    id: RequestId
    chats: list[SyncedChat]


class ReceiptUpdate(_Frame, tag="receipt", kw_only=True):
    """Another member's delivered/read watermark moved."""

    chat: ChatId
    user: UserId
    status: ReceiptStatus
    seq: Seq
    ts: TimestampMs


class PresenceFrame(_Frame, tag="presence", kw_only=True):
    """Presence states: the answer to ``presence.subscribe`` (with ``id``) or a push."""

    id: RequestId | None = None
    states: list[PresenceView]


class Ok(_Frame, tag="ok", kw_only=True):
    """A request without a richer answer succeeded."""

    id: RequestId


class ErrorFrame(_Frame, tag="error", kw_only=True):
    """A request failed (``id`` absent if the frame had none); the connection stays open."""

    id: RequestId | None = None
    code: ErrorCode
    message: str
    retry_after_ms: Count | None = None


class TypingUpdate(_Frame, tag="typing", kw_only=True):
    """A member is typing in a chat."""

    chat: ChatId
    user: UserId


class KeysFrame(_Frame, tag="keys", kw_only=True):
    """The answer to ``keys.fetch``: every user asked for, with their devices' keys."""

    id: RequestId
    users: Annotated[list[UserKeysView], msgspec.Meta(max_length=MAX_LIST_LENGTH)]


class KeysChanged(_Frame, tag="keys.changed", kw_only=True):
    """A device of ``user`` published a new key (``version``, ``public_key``) or had it
    revoked (both absent). Pushed to the user's other devices and to every user who
    shares a chat with them; a client drops what it cached of ``user``'s keys."""

    user: UserId
    device: DeviceId
    version: KeyVersion | None = None
    public_key: PublicKey | None = None


# --- unions ------------------------------------------------------------------

ClientFrame: TypeAlias = (
    Hello
    | Ping
    | ChatCreate
    | ChatMembers
    | ListChats
    | Send
    | Edit
    | Delete
    | React
    | Unreact
    | History
    | Sync
    | Receipt
    | PresenceSubscribe
    | PresenceUnsubscribe
    | Typing
    | PushRegister
    | PushUnregister
    | KeysPublish
    | KeysFetch
    | KeysRevoke
)
"""A frame a client sends."""

ServerFrame: TypeAlias = (
    Welcome
    | Pong
    | ChatFrame
    | ChatList
    | AcceptedFrame
    | Message
    | HistoryPageFrame
    | Synced
    | ReceiptUpdate
    | PresenceFrame
    | Ok
    | ErrorFrame
    | TypingUpdate
    | KeysFrame
    | KeysChanged
)
"""A frame the server sends."""


def _by_tag(union: object) -> Mapping[str, type[msgspec.Struct]]:
    classes: tuple[type[msgspec.Struct], ...] = getattr(union, "__args__", ())
    return MappingProxyType({str(cls.__struct_config__.tag): cls for cls in classes})


CLIENT_FRAME_TYPES = _by_tag(ClientFrame)
"""Client frame class by ``type``."""
SERVER_FRAME_TYPES = _by_tag(ServerFrame)
"""Server frame class by ``type``."""
