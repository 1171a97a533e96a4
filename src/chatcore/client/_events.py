"""What ``ChatClient.events()`` yields: one small frozen dataclass per kind of event."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from chatcore.errors import ChatcoreError
from chatcore.protocol import ChatView, Message, PresenceView, ReceiptStatus, SyncedChat

__all__ = [
    "ChatUpdated",
    "ClientEvent",
    "Connected",
    "DeviceKeysChanged",
    "Disconnected",
    "HistorySkipped",
    "MessageReceived",
    "PresenceChanged",
    "ReceiptChanged",
    "ServerError",
    "SyncCompleted",
    "TypingStarted",
]


@dataclass(frozen=True, slots=True)
class Connected:
    """The server welcomed this device; ``reconnected`` after a lost connection."""

    user: str
    device: str
    reconnected: bool


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection closed; unless ``reconnecting``, the client has stopped for ``error``."""

    close_code: int | None
    reason: str
    reconnecting: bool
    error: ChatcoreError | None = None


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """The next message of a chat: per chat, strictly in seq order and each seq once.

    For an end-to-end encrypted message (``message.encrypted``) received by a client
    with a keyring: ``text`` is what it says, or ``undecryptable`` says why it did not
    open (not sealed for this device, a key version this device no longer holds, a
    body that does not authenticate); ``message.body`` stays the envelope.
    """

    message: Message
    text: str | None = None
    undecryptable: str | None = None

    @property
    def chat(self) -> str:
        return self.message.chat

    @property
    def seq(self) -> int:
        return self.message.seq


@dataclass(frozen=True, slots=True)
class HistorySkipped:
    """A chat was further behind than ``backfill_limit``: seqs ``after+1 .. until`` were
    not delivered (read them with ``history``); delivery goes on from ``until + 1``."""

    chat: str
    after: int
    until: int


@dataclass(frozen=True, slots=True)
class SyncCompleted:
    """Catch-up after (re)connecting is done; each chat's last seq, watermarks and unread count."""

    chats: tuple[SyncedChat, ...]


@dataclass(frozen=True, slots=True)
class ReceiptChanged:
    """A member's delivered or read watermark in a chat moved up to ``seq``."""

    chat: str
    user: str
    status: ReceiptStatus
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """Presence of subscribed users: after subscribing, on every change, after reconnecting."""

    states: tuple[PresenceView, ...]


@dataclass(frozen=True, slots=True)
class TypingStarted:
    """Another member is typing in a chat (ephemeral: show it for a few seconds)."""

    chat: str
    user: str


@dataclass(frozen=True, slots=True)
class ChatUpdated:
    """A chat this user is in was created or changed (members, title)."""

    chat: ChatView


@dataclass(frozen=True, slots=True)
class DeviceKeysChanged:
    """A device of ``user`` (this user's other devices included) published key
    ``version``, or had its key revoked (``version`` None). With a keyring, the client
    has already dropped its cached keys of ``user``."""

    user: str
    device: str
    version: int | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server refused a frame that had no request to answer (a receipt, typing)."""

    error: ChatcoreError


ClientEvent: TypeAlias = (
    Connected
    | Disconnected
    | MessageReceived
    | HistorySkipped
    | SyncCompleted
    | ReceiptChanged
    | PresenceChanged
    | TypingStarted
    | ChatUpdated
    | DeviceKeysChanged
    | ServerError
)
"""Every event the client yields."""
