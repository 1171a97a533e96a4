"""Ports of the durable stores: messages, receipt watermarks, chat membership.

Every write is idempotent, so a worker that crashed after writing and before
committing its log offset can write the same records again harmlessly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from chatcore._resource import AsyncResource
from chatcore.model import ChatInfo, ChatRoles, StoredMessage, Watermarks

__all__ = ["MembershipStore", "MessageStore", "ReceiptStore"]


class MessageStore(AsyncResource, Protocol):
    """Sequenced messages by ``(chat_id, seq)``, kept for years."""

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        """Store messages; an existing ``(chat_id, seq)`` is left as it is (idempotent).

        Raises :class:`~chatcore.errors.InvalidRequest` (nothing stored) if a seq is
        below 1.
        """
        ...

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        """Store newer states of messages (an edit, a tombstone, reactions applied).

        Each one overwrites the stored ``(chat_id, seq)`` unless that holds a
        ``changed_seq`` at least as high (so a replayed write changes nothing); one not
        stored yet is stored, and a later ``append`` of it keeps this state. Raises
        :class:`~chatcore.errors.InvalidRequest` (nothing stored) if a seq is below 1.
        """
        ...

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages ascending by seq.

        ``after=a``: the first ones with ``seq > a``. ``before=b``: the last ones with
        ``seq < b``. Both: the first ones in ``a < seq < b``. Neither: the latest ones.
        Raises :class:`~chatcore.errors.InvalidRequest` for a negative ``limit``.
        """
        ...

    async def last_seq(self, chat_id: str) -> int:
        """The highest stored seq of a chat, 0 when it has none."""
        ...

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        """The stored message a sender sent with ``client_msg_id``, if any.

        If the sender used the id for several messages, the one with the lowest seq.
        A backend may forget ids after a dedupe window (Cassandra: a TTL), so None
        does not prove the id was never used.
        """
        ...


class ReceiptStore(AsyncResource, Protocol):
    """Per (chat, member) watermarks: delivered up to seq, read up to seq."""

    async def advance(
        self,
        chat_id: str,
        user: str,
        *,
        delivered_seq: int = 0,
        read_seq: int = 0,
        now_ms: int = 0,
    ) -> Watermarks:
        """Raise the watermarks to at least the given values; never lowers them.

        ``read`` implies ``delivered``: the stored delivered_seq is at least read_seq.
        ``updated_ms`` becomes ``now_ms`` only if a watermark moved; a call that moves
        nothing stores nothing. Returns the watermarks after the update; with
        concurrent calls for one member they may be lower than what ends up stored.
        Raises :class:`~chatcore.errors.InvalidRequest` for a negative seq.
        """
        ...

    async def advance_many(self, targets: Sequence[Watermarks]) -> list[Watermarks | None]:
        """:meth:`advance` for each of ``targets`` in order (its ``updated_ms`` is the
        ``now_ms``), in as few round trips as the backend allows.

        Returns, per target, the watermarks after it, or None if it moved nothing
        (a receipt worker tells members only about those that moved). Several targets
        of one member apply one after the other. Raises
        :class:`~chatcore.errors.InvalidRequest`, storing nothing, if any seq is
        invalid.
        """
        ...

    async def get(self, chat_id: str, user: str) -> Watermarks:
        """The watermarks of one member (zeros when none were stored)."""
        ...

    async def for_chat(self, chat_id: str) -> dict[str, Watermarks]:
        """Every stored member's watermarks in a chat, by user."""
        ...

    async def for_user(self, user: str, chat_ids: Sequence[str]) -> dict[str, Watermarks]:
        """One user's watermarks in several chats, by chat id (zeros when none)."""
        ...


class MembershipStore(AsyncResource, Protocol):
    """Chats, their members, and each user's chat list (both directions)."""

    async def create_chat(self, chat: ChatInfo) -> ChatInfo:
        """Store a new chat; if ``chat.chat_id`` exists, return the stored one unchanged.

        Members keep their given order; a repeated member is stored once.
        """
        ...

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        """The chat with its current members, or None."""
        ...

    async def get_chats(self, chat_ids: Iterable[str]) -> dict[str, ChatInfo]:
        """The chats of ``chat_ids`` that exist, by id (one call for a polled batch)."""
        ...

    async def update_members(
        self, chat_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> ChatInfo:
        """Append ``add`` (new members only), then take out ``remove``; returns the chat.

        The remaining members keep their order. Raises
        :class:`~chatcore.errors.NotFound` if there is no such chat.
        """
        ...

    async def chats_of(self, user: str) -> list[str]:
        """The ids of the chats ``user`` is a member of, sorted."""
        ...

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        """Replace the chat's roles and options; returns the chat as stored after the call.

        With ``expected``, a compare-and-set: the roles are replaced only if they are
        still ``expected``; otherwise nothing changes and the chat comes back with its
        current roles (so the caller sees ``roles`` were not stored, reads what won, and
        plans again). Without it, the last write wins. ``create_chat`` stores a chat's
        first roles. Raises :class:`~chatcore.errors.NotFound` if there is no such chat.
        """
        ...
