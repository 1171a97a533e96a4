"""Domain values shared by every layer: chats, messages, watermarks, connections.

These are plain immutable ``msgspec.Struct`` values. Ports take and return them;
backends serialise them however their engine wants. Wire frames live apart in
:mod:`chatcore.protocol` so the storage shape and the client contract can evolve
separately.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

__all__ = [
    "Attachment",
    "ChatInfo",
    "ChatKind",
    "Connection",
    "MessageKind",
    "PresenceState",
    "ReceiptStatus",
    "StoredMessage",
    "Watermarks",
    "direct_chat_id",
]

ChatKind = Literal["direct", "group"]
MessageKind = Literal["text", "image", "video", "file"]
ReceiptStatus = Literal["delivered", "read"]


class Attachment(msgspec.Struct, frozen=True):
    """A media attachment; the bytes live elsewhere (object storage), chatcore keeps the link."""

    url: str
    name: str
    size: int
    mime: str


class ChatInfo(msgspec.Struct, frozen=True):
    """A chat and its current members."""

    chat_id: str
    kind: ChatKind
    members: tuple[str, ...]
    title: str | None = None
    created_ms: int = 0

    def has_member(self, user: str) -> bool:
        return user in self.members


class StoredMessage(msgspec.Struct, frozen=True):
    """A sequenced message: what history keeps and every device receives."""

    chat_id: str
    seq: int
    message_id: int
    sender: str
    client_msg_id: str
    kind: MessageKind
    body: str
    ts: int
    attachment: Attachment | None = None
    encrypted: bool = False
    sender_device: str = ""


class Watermarks(msgspec.Struct, frozen=True):
    """How far one member has received and read one chat (cumulative, by seq)."""

    chat_id: str
    user: str
    delivered_seq: int = 0
    read_seq: int = 0
    updated_ms: int = 0


class Connection(msgspec.Struct, frozen=True):
    """One live device connection of a user, held by one gateway."""

    user: str
    device: str
    gateway: str
    conn_id: str


class PresenceState(msgspec.Struct, frozen=True):
    """Whether a user is online, and when they were last seen (ms)."""

    user: str
    online: bool
    last_seen: int | None = None


def direct_chat_id(a: str, b: str) -> str:
    """The one chat id of the direct chat between two users, whatever the order."""
    lo, hi = sorted((a, b))
    digest = hashlib.blake2b(f"{len(lo)}:{lo}|{hi}".encode(), digest_size=12).hexdigest()
    return f"d-{digest}"
