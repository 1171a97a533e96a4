"""The values frames carry: constrained scalar types and nested objects.

Constraints are structural (lengths, ranges, patterns) and appear in the JSON
Schema; rules of the domain (group size, who may subscribe) belong to the server.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeAlias

import msgspec

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_LIST_LENGTH",
    # scalar types
    "BlobId",
    "ChatId",
    "ChatKind",
    "ClientMsgId",
    "Count",
    "DeviceId",
    "MessageId",
    "MessageKind",
    "EventKind",
    "PresenceStatus",
    "ReceiptStatus",
    "RequestId",
    "Seq",
    "TimestampMs",
    "Title",
    "UserId",
    "Users",
    "WireObject",
    # nested objects
    "AttachmentView",
    "ReactionView",
    "ChatSummary",
    "ChatView",
    "PresenceView",
    "SyncedChat",
    # push
    "PushKeysView",
    "PushKindName",
    # end-to-end encryption keys
    "DeviceKeyView",
    "KeyVersion",
    "PublicKey",
    "UserKeysView",
]

MAX_ID_LENGTH = 128
"""Longest chat, user, device or client message id, in characters."""
MAX_LIST_LENGTH = 1024
"""Structural bound on member, user and cursor lists; servers enforce lower limits."""
_INT64_MAX = 2**63 - 1

# --- field types -------------------------------------------------------------

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
ChatId: TypeAlias = _Id
UserId: TypeAlias = _Id
DeviceId: TypeAlias = _Id
ClientMsgId: TypeAlias = _Id
MessageId = Annotated[
    str,
    msgspec.Meta(pattern=r"^(0|[1-9][0-9]{0,19})$", description="A 64-bit id as a decimal string."),
]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
Seq = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
Count = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX)]
TimestampMs = Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX, description="Unix epoch ms.")]
Title = Annotated[str, msgspec.Meta(max_length=256)]
Users = Annotated[list[UserId], msgspec.Meta(max_length=MAX_LIST_LENGTH)]

ChatKind = Literal["direct", "group"]
MessageKind = Literal["text", "image", "video", "file"]
EventKind = Literal["edit", "delete", "react", "unreact"]
"""A lifecycle event's kind: it changes the message ``target`` of the same chat."""
Emoji = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ReceiptStatus = Literal["delivered", "read"]
PresenceStatus = Literal["online", "offline"]


class WireObject(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Base of every object on the wire: keyword-only, unknown fields ignored.

    Subclasses repeat ``kw_only=True``: msgspec inherits it, but type checkers only
    read a class's own keywords.
    """


# --- nested objects ----------------------------------------------------------


class ReactionView(WireObject, kw_only=True):
    """One emoji on a message and who reacted with it, in reaction order."""

    emoji: Emoji
    users: Users


BlobId = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9a-f]{64}$", description="An uploaded blob: SHA-256 hex."),
]
_Url = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class AttachmentView(WireObject, kw_only=True, omit_defaults=True):
    """The media file of an ``image``, ``video`` or ``file`` message.

    A client sends ``blob`` (the id ``POST /media`` answered), ``name``, and the
    ``size`` and ``mime`` of the upload; never ``url``. The server adds ``url`` (and
    ``thumbnail_url`` for an image with a thumbnail): short-lived signed links.
    """

    url: _Url | None = None
    name: Annotated[str, msgspec.Meta(max_length=1024)]
    size: Annotated[int, msgspec.Meta(ge=0, le=_INT64_MAX, description="Bytes.")]
    mime: Annotated[str, msgspec.Meta(max_length=255)]
    blob: BlobId | None = None
    thumbnail: BlobId | None = None
    thumbnail_url: _Url | None = None


class ChatView(WireObject, kw_only=True, omit_defaults=True):
    """A chat as every member sees it.

    A group names its ``creator`` and ``admins`` (members only; never empty while the
    group has members) and whether members added later see earlier history.
    """

    chat: ChatId
    kind: ChatKind
    members: Users
    title: Title | None
    last_seq: Seq
    creator: UserId | None = None
    admins: Users = msgspec.field(default_factory=list)
    history_visible: bool = True


class MemberWatermarks(WireObject, kw_only=True):
    """How far one member of a chat has received and read it."""

    user: UserId
    delivered_seq: Seq
    read_seq: Seq


class ChatSummary(ChatView, kw_only=True, omit_defaults=True):
    """An entry of the ``chats`` list: the chat plus the user's watermarks.

    ``watermarks`` holds every other member's watermarks, so a client can draw the
    ticks of its own messages without waiting for the next ``receipt`` push.
    """

    read_seq: Seq
    delivered_seq: Seq
    unread: Count
    watermarks: Annotated[list[MemberWatermarks], msgspec.Meta(max_length=MAX_LIST_LENGTH)] = (
        msgspec.field(default_factory=list)
    )


class SyncedChat(WireObject, kw_only=True):
    """The state of one chat after a ``sync``."""

    chat: ChatId
    last_seq: Seq
    read_seq: Seq
    delivered_seq: Seq
    unread: Count
    truncated: bool = False


class PresenceView(WireObject, kw_only=True):
    """Whether a user is online, and when they were last seen."""

    user: UserId
    status: PresenceStatus
    last_seen: TimestampMs | None = None


# --- push --------------------------------------------------------------------

PushKindName = Literal["webpush", "fcm", "apns"]
"""The push services a device can register with."""


class PushKeysView(WireObject, kw_only=True):
    """A Web Push subscription's keys, base64url, as ``PushSubscription.toJSON()`` gives them."""

    p256dh: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    auth: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


# --- end-to-end encryption keys ---------------------------------------------------

KeyVersion = Annotated[
    int,
    msgspec.Meta(ge=1, le=2**53 - 1, description="1 for a device's first key; higher rotates."),
]
PublicKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=256,
        description="An X25519 public key: 32 raw bytes, base64url without padding.",
    ),
]


class DeviceKeyView(WireObject, kw_only=True):
    """One device's current public key."""

    device: DeviceId
    version: KeyVersion
    public_key: PublicKey


class UserKeysView(WireObject, kw_only=True):
    """A user's devices that published a key (maybe none)."""

    user: UserId
    devices: Annotated[list[DeviceKeyView], msgspec.Meta(max_length=MAX_LIST_LENGTH)]
