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
    "ChatRoles",
    "ChatState",
    "Connection",
    "EVENT_KINDS",
    "EventKind",
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
EventKind = Literal["edit", "delete", "react", "unreact"]
"""A lifecycle event: sequenced in the chat like a message, it changes message ``target``."""
EVENT_KINDS: frozenset[str] = frozenset(("edit", "delete", "react", "unreact"))
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


class ChatRoles(msgspec.Struct, frozen=True):
    """Who runs a group, and what a member added later sees (docs/groups.md).

    A direct chat, and a group stored before roles existed, hold the defaults; the
    rules in :mod:`chatcore.pipeline.roles` then treat the group's first member as
    its admin.
    """

    creator: str = ""
    admins: tuple[str, ...] = ()
    """Admins in the order they became admins (members only; the creator among them
    while a member)."""
    history_visible: bool = True
    """Whether a member added later sees the messages sent before they joined."""
    joined: tuple[tuple[str, int], ...] = ()
    """``(member, seq)`` of members added while ``history_visible`` was off: they see
    only messages after ``seq``."""


class ChatInfo(msgspec.Struct, frozen=True):
    """A chat and its current members."""

    chat_id: str
    kind: ChatKind
    members: tuple[str, ...]
    title: str | None = None
    created_ms: int = 0
    roles: ChatRoles = msgspec.field(default_factory=ChatRoles)

    def has_member(self, user: str) -> bool:
        return user in self.members

    def creator(self) -> str:
        """A group's creator ('' for a direct chat). A group stored before roles
        existed counts its first member as creator and admin."""
        if self.kind != "group":
            return ""
        if self.roles.creator or self.roles.admins:
            return self.roles.creator
        return self.members[0] if self.members else ""

    def admins(self) -> tuple[str, ...]:
        """A group's admins who are members (none for a direct chat).

        A group with members but no admin among them (stored before roles existed, or
        its only admin removed by a change that raced a promotion) counts its first
        member as admin, as the last admin leaving would have made them.
        """
        if self.kind != "group":
            return ()
        return tuple(a for a in self.roles.admins if a in self.members) or self.members[:1]

    def is_admin(self, user: str) -> bool:
        return user in self.admins()

    def visible_after(self, user: str) -> int:
        """The seq after which ``user`` sees this chat's messages (0: all of them)."""
        return dict(self.roles.joined).get(user, 0)


class StoredMessage(msgspec.Struct, frozen=True):
    """A sequenced message or lifecycle event: what history keeps and every device receives.

    An event (``kind`` an :data:`EventKind`) names the message it changes in
    ``target`` (a seq of the same chat): ``edit`` carries the new ``body``, ``react``
    and ``unreact`` the emoji in ``body``, ``delete`` nothing. History holds both the
    event and the message in its current state (``edited_ts``, ``deleted``,
    ``reactions``; ``changed_seq`` is the last event applied to it).
    """

    chat_id: str
    seq: int
    message_id: int
    sender: str
    client_msg_id: str
    kind: MessageKind | EventKind
    body: str
    ts: int
    attachment: Attachment | None = None
    encrypted: bool = False
    sender_device: str = ""
    target: int = 0
    edited_ts: int = 0
    deleted: bool = False
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """``(emoji, users)`` in the order each emoji was first used; users in reaction order."""
    changed_seq: int = 0
    counted: int = 0
    """How many messages (events not counted) the chat holds up to this seq; 0: not
    recorded (a message stored before events existed: every seq up to it counts)."""

    @property
    def is_event(self) -> bool:
        return self.kind in EVENT_KINDS

    def count(self) -> int:
        """How many messages, not events, the chat holds up to this one."""
        return self.counted or self.seq


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
