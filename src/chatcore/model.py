"""Domain values shared by every layer: chats, messages, watermarks, connections,
and what reads answer (a history page, a chat's state for one member, a sync).

These are plain immutable values (``msgspec.Struct``; the read results are
``NamedTuple``). Ports take and return them; backends serialise them however their
engine wants. Wire frames live apart in :mod:`chatcore.protocol` so the storage
shape and the client contract can evolve separately.
"""

from __future__ import annotations

import hashlib
from typing import Literal, NamedTuple

import msgspec

__all__ = [
    "Attachment",
    "ChatInfo",
    "ChatKind",
    "ChatState",
    "Connection",
    "HistoryPage",
    "MessageKind",
    "PresenceState",
    "ReceiptStatus",
    "StoredMessage",
    "SyncResult",
    "Watermarks",
    "direct_chat_id",
]

ChatKind = Literal["direct", "group"]
MessageKind = Literal["text", "image", "video", "file"]
ReceiptStatus = Literal["delivered", "read"]


class Attachment(msgspec.Struct, frozen=True):
    """A media attachment: an uploaded blob (its bytes live in a ``BlobStore``).

    ``url`` is empty for a blob attachment (the server signs a short-lived URL for each
    member when it sends the message); messages stored before blobs keep theirs.
    """

    url: str
    name: str
    size: int
    mime: str
    blob: str = ""
    """The uploaded blob's id (SHA-256 hex)."""
    thumbnail: str | None = None
    """The id of an image's thumbnail blob."""


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


class HistoryPage(NamedTuple):
    """Messages ascending by seq; ``has_more``: more exist beyond the page's far end."""

    messages: list[StoredMessage]
    has_more: bool


class ChatState(NamedTuple):
    """A chat as one member sees it: how far it goes and how far they got."""

    chat: ChatInfo
    last_seq: int
    read_seq: int
    delivered_seq: int
    unread: int
    truncated: bool = False
    others: tuple[Watermarks, ...] = ()
    """The other members' watermarks, when asked for."""


class SyncResult(NamedTuple):
    """What a user missed (messages ascending per chat) and the state of each chat."""

    messages: list[StoredMessage]
    chats: list[ChatState]


def direct_chat_id(a: str, b: str) -> str:
    """The one chat id of the direct chat between two users, whatever the order."""
    lo, hi = sorted((a, b))
    digest = hashlib.blake2b(f"{len(lo)}:{lo}|{hi}".encode(), digest_size=12).hexdigest()
    return f"d-{digest}"
