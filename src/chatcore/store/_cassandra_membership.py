"""The Cassandra MembershipStore: chats changed by compare-and-set, mirrored by user.

How this works: a ``chats`` row holds the ordered member list and a version. It is
created with ``INSERT ... IF NOT EXISTS`` and changed with ``UPDATE ... IF version =
v`` (lightweight transactions: rare writes, so their cost does not matter), so
concurrent creates agree on one chat and concurrent updates all apply, in some
order. ``user_chats`` mirrors the members by user for ``chats_of``; its rows are
written after the chat with the chat's version as write timestamp, so the newest
member list wins whatever order the mirror writes land in, and each call rewrites
the mirror rows of the users it names, which repairs a call that died half-way.
A ``chat_roles`` row changes by compare-and-set on its bytes too, so two admins
changing roles at once never lose one change (``set_roles(expected=...)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar, cast

import msgspec

from chatcore._gather import concurrently
from chatcore.errors import NotFound, Unavailable
from chatcore.model import ChatInfo, ChatKind, ChatRoles
from chatcore.store._cassandra_session import CassandraAdapter, Row, cas_back_off
from chatcore.store._rules import changed_members, unique

__all__ = ["CassandraMembershipStore"]

_CAS_ATTEMPTS = 32  # compare-and-set rounds before update_members gives up
_IN_KEYS = 100  # chat ids per ``IN`` query of get_chats (larger batches: several at once)
_encode_roles = msgspec.msgpack.Encoder().encode
_decode_roles = msgspec.msgpack.Decoder(ChatRoles).decode


def _roles_of(data: bytes | None) -> ChatRoles:
    """The roles in a ``chat_roles`` row's bytes (none on record: the defaults)."""
    return _decode_roles(data) if data else ChatRoles()


def _chat(chat_id: str, row: Row) -> tuple[ChatInfo, int]:
    """The chat in a ``chats`` row, and the row's version."""
    chat = ChatInfo(
        chat_id,
        cast(ChatKind, row["kind"]),
        tuple(row["members"] or ()),
        title=row["title"],
        created_ms=row["created_ms"] or 0,
    )
    return chat, int(row["version"])


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _IN_KEYS] for i in range(0, len(ids), _IN_KEYS)]


class CassandraMembershipStore(CassandraAdapter):
    """A :class:`~chatcore.store.MembershipStore` in Cassandra; member lists change by CAS."""

    _STATEMENTS: ClassVar[dict[str, str]] = {
        "create": "INSERT INTO {ks}.chats (chat_id, kind, title, created_ms, members, version) "
        "VALUES (?, ?, ?, ?, ?, 1) IF NOT EXISTS",
        "get": "SELECT kind, title, created_ms, members, version FROM {ks}.chats WHERE chat_id = ?",
        "get_many": "SELECT chat_id, kind, title, created_ms, members, version FROM {ks}.chats "
        "WHERE chat_id IN ?",
        "replace_members": "UPDATE {ks}.chats SET members = ?, version = ? WHERE chat_id = ? "
        "IF version = ?",
        # user_chats rows carry the chat's version as timestamp: the newest list wins.
        "link": "INSERT INTO {ks}.user_chats (user_id, chat_id) VALUES (?, ?) USING TIMESTAMP ?",
        "unlink": "DELETE FROM {ks}.user_chats USING TIMESTAMP ? WHERE user_id = ? AND chat_id = ?",
        "chats_of": "SELECT chat_id FROM {ks}.user_chats WHERE user_id = ?",
        # Roles change by compare-and-set on the stored bytes (msgpack of equal roles is
        # equal): every write is a lightweight transaction, none a plain write.
        "first_roles": "INSERT INTO {ks}.chat_roles (chat_id, data) VALUES (?, ?) IF NOT EXISTS",
        "replace_roles": "UPDATE {ks}.chat_roles SET data = ? WHERE chat_id = ? IF data = ?",
        "get_roles": "SELECT data FROM {ks}.chat_roles WHERE chat_id = ?",
        "get_roles_many": "SELECT chat_id, data FROM {ks}.chat_roles WHERE chat_id IN ?",
    }

    async def create_chat(self, chat: ChatInfo) -> ChatInfo:
        """Store a new chat, or return the stored one unchanged if the id exists.

        Members keep their given order; a repeated member is stored once. Raises
        Unavailable if Cassandra fails (creating it again is safe), ChatcoreClosed
        after ``aclose()``.
        """
        self._check()
        members = unique(chat.members)
        applied, row = await self._db.applied(
            self._q["create"],
            (chat.chat_id, chat.kind, chat.title, chat.created_ms, list(members)),
        )
        if applied:
            stored, version = msgspec.structs.replace(chat, members=members), 1
            if chat.roles != ChatRoles():
                await self._db.applied(
                    self._q["first_roles"], (chat.chat_id, _encode_roles(chat.roles))
                )
        else:
            stored, version = _chat(chat.chat_id, row)
            stored = msgspec.structs.replace(stored, roles=await self._roles(chat.chat_id))
        await self._mirror(stored, version, stored.members)  # repairs an interrupted create
        return stored

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        """The chat with its current members, or None.

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        found = await self._read(chat_id)
        return None if found is None else found[0]

    async def get_chats(self, chat_ids: Iterable[str]) -> dict[str, ChatInfo]:
        """The chats of ``chat_ids`` that exist, by id: one ``IN`` query for the chats,
        then one for their roles (per :data:`_IN_KEYS` ids, those run concurrently).

        The roles are read after the members, as :meth:`get_chat` does: a member change
        writes the roles first (who joins late), so a member seen here has its roles
        read next. Raises Unavailable if Cassandra fails, ChatcoreClosed after
        ``aclose()``.
        """
        self._check()
        ids = list(dict.fromkeys(chat_ids))
        chats: dict[str, ChatInfo] = {}
        roles: dict[str, bytes | None] = {}

        async def read_chats(chunk: list[str]) -> None:
            for row in await self._db.execute(self._q["get_many"], (chunk,)):
                chats[row["chat_id"]] = _chat(row["chat_id"], row)[0]

        async def read_roles(chunk: list[str]) -> None:
            for row in await self._db.execute(self._q["get_roles_many"], (chunk,)):
                roles[row["chat_id"]] = row["data"]

        await concurrently(read_chats, _chunks(ids))
        found = [i for i in ids if i in chats]
        await concurrently(read_roles, _chunks(found))
        return {i: msgspec.structs.replace(chats[i], roles=_roles_of(roles.get(i))) for i in found}

    async def update_members(
        self, chat_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> ChatInfo:
        """Append ``add`` (new members only), then take out ``remove``; returns the chat.

        A compare-and-set on the chat's version, retried while other updates win.
        Raises NotFound if there is no such chat, Unavailable if Cassandra fails or
        the chat stays contended (updating again is safe), ChatcoreClosed after
        ``aclose()``.
        """
        self._check()
        for attempt in range(_CAS_ATTEMPTS):
            await cas_back_off(attempt)
            found = await self._read(chat_id)
            if found is None:
                raise NotFound(f"no chat {chat_id!r}")
            chat, version = found
            members = changed_members(chat.members, add=add, remove=remove)
            touched = {*add, *remove}
            if members == chat.members:
                await self._mirror(chat, version, touched)  # repairs an interrupted update
                return chat
            applied, _ = await self._db.applied(
                self._q["replace_members"], (list(members), version + 1, chat_id, version)
            )
            if applied:
                updated = msgspec.structs.replace(chat, members=members)
                await self._mirror(updated, version + 1, touched | ({*chat.members} ^ {*members}))
                return updated
        raise Unavailable(f"cassandra: chat {chat_id!r} kept changing; update its members again")

    async def chats_of(self, user: str) -> list[str]:
        """The ids of the chats ``user`` is a member of, sorted.

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        rows = await self._db.execute(self._q["chats_of"], (user,))
        return sorted(row["chat_id"] for row in rows)

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        """Replace the chat's roles if they are still ``expected`` (when given).

        A lightweight transaction on the bytes read (``IF data = ?``, or ``IF NOT
        EXISTS`` for a chat with no roles on record), read again and retried while
        other writes win; with ``expected`` it stops as soon as the roles read are
        not ``expected`` and returns the chat as it is. Raises NotFound, Unavailable if
        Cassandra fails or the roles stay contended, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        data = _encode_roles(roles)
        for attempt in range(_CAS_ATTEMPTS):
            await cas_back_off(attempt)
            rows = await self._db.execute(self._q["get"], (chat_id,))
            if not rows:
                raise NotFound(f"no chat {chat_id!r}")
            stored = await self._roles_data(chat_id)  # what the condition compares with
            chat = msgspec.structs.replace(_chat(chat_id, rows[0])[0], roles=_roles_of(stored))
            if expected is not None and chat.roles != expected:
                return chat
            if stored is None:
                applied, _ = await self._db.applied(self._q["first_roles"], (chat_id, data))
            else:
                applied, _ = await self._db.applied(
                    self._q["replace_roles"], (data, chat_id, stored)
                )
            if applied:
                return msgspec.structs.replace(chat, roles=roles)
        raise Unavailable(f"cassandra: the roles of chat {chat_id!r} kept changing; set them again")

    async def _roles_data(self, chat_id: str) -> bytes | None:
        """The stored msgpack of the chat's roles, or None when it has no row."""
        rows = await self._db.execute(self._q["get_roles"], (chat_id,))
        return rows[0]["data"] if rows else None

    async def _roles(self, chat_id: str) -> ChatRoles:
        return _roles_of(await self._roles_data(chat_id))

    async def _read(self, chat_id: str) -> tuple[ChatInfo, int] | None:
        rows = await self._db.execute(self._q["get"], (chat_id,))
        if not rows:
            return None
        chat, version = _chat(chat_id, rows[0])
        return msgspec.structs.replace(chat, roles=await self._roles(chat_id)), version

    async def _mirror(self, chat: ChatInfo, version: int, users: Iterable[str]) -> None:
        """Make ``user_chats`` agree with ``chat`` (at ``version``) for ``users``."""
        members = set(chat.members)
        await self._db.execute_all(
            [
                (self._q["link"], (user, chat.chat_id, version))
                if user in members
                else (self._q["unlink"], (version, user, chat.chat_id))
                for user in users
            ]
        )
