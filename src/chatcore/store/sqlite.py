"""Stores of messages, watermarks and membership in SQLite: durable, one process at a time.

Each store takes a file path (it opens the file and closes it in ``aclose()``) or an
open :class:`~chatcore._sqlite.SqliteDatabase` (shared with other stores or the log;
its owner closes it). Tables::

    messages    (chat_id, seq)            msgpack StoredMessage + key columns
                index (chat_id, sender, client_msg_id) for find_client_msg
    watermarks  (chat_id, user)           delivered_seq, read_seq, updated_ms
    chats       (chat_id)                 kind, title, created_ms
    members     (chat_id, user)           pos: the member's place in the chat's list
    user_chats  (user, chat_id)           the same membership, by user
    chat_roles  (chat_id)                 msgpack ChatRoles (absent: the defaults)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TypeVar

import msgspec

from chatcore._sqlite import SqliteAdapter, select_in
from chatcore.errors import NotFound
from chatcore.model import ChatInfo, ChatRoles, StoredMessage, Watermarks
from chatcore.receipts.watermarks import Member
from chatcore.store._rules import (
    advanced_all,
    changed_members,
    check_limit,
    check_messages,
    unique,
)

__all__ = ["SqliteMembershipStore", "SqliteMessageStore", "SqliteReceiptStore"]

T = TypeVar("T")

_MESSAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    chat_id TEXT NOT NULL, seq INTEGER NOT NULL,
    sender TEXT NOT NULL, client_msg_id TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (chat_id, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_client_msg
    ON messages (chat_id, sender, client_msg_id);
"""

_WATERMARKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS watermarks (
    chat_id TEXT NOT NULL, user TEXT NOT NULL,
    delivered_seq INTEGER NOT NULL, read_seq INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user)) WITHOUT ROWID;
"""

_MEMBERSHIP_SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    chat_id TEXT NOT NULL PRIMARY KEY, kind TEXT NOT NULL, title TEXT,
    created_ms INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS members (
    chat_id TEXT NOT NULL, user TEXT NOT NULL, pos INTEGER NOT NULL,
    PRIMARY KEY (chat_id, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_chats (
    user TEXT NOT NULL, chat_id TEXT NOT NULL,
    PRIMARY KEY (user, chat_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS chat_roles (
    chat_id TEXT NOT NULL PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;
"""

_encode = msgspec.msgpack.Encoder().encode
_decode_message = msgspec.msgpack.Decoder(StoredMessage).decode
_decode_roles = msgspec.msgpack.Decoder(ChatRoles).decode

# Host parameters per statement stay well under SQLite's limit (999 before 3.32).


class SqliteMessageStore(SqliteAdapter):
    """A :class:`~chatcore.store.MessageStore` in a SQLite file (a path or a shared database)."""

    _schema = _MESSAGES_SCHEMA

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        """Store messages in one transaction; an existing ``(chat_id, seq)`` is kept as it is.

        Raises InvalidRequest (nothing stored) if a seq is below 1, Unavailable if the
        file cannot be written, ChatcoreClosed after ``aclose()``.
        """
        check_messages(messages)
        rows = [(m.chat_id, m.seq, m.sender, m.client_msg_id, _encode(m)) for m in messages]
        await self._run(
            lambda c: c.executemany("INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, ?)", rows)
        )

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        """Store newer states of messages in one transaction (see the port); raises
        InvalidRequest, Unavailable, ChatcoreClosed."""
        check_messages(messages)

        def write(c: sqlite3.Connection) -> None:
            for m in messages:
                row = c.execute(
                    "SELECT data FROM messages WHERE chat_id = ? AND seq = ?", (m.chat_id, m.seq)
                ).fetchone()
                if row is not None and _decode_message(row[0]).changed_seq >= m.changed_seq:
                    continue
                c.execute(
                    "INSERT OR REPLACE INTO messages VALUES (?, ?, ?, ?, ?)",
                    (m.chat_id, m.seq, m.sender, m.client_msg_id, _encode(m)),
                )

        await self._run(write)

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages ascending by seq; see ``MessageStore.range``.

        Raises InvalidRequest for a negative limit, Unavailable if the file cannot be
        read, ChatcoreClosed after ``aclose()``.
        """
        check_limit(limit)
        where = "chat_id = ?"
        args: list[object] = [chat_id]
        if after is not None:
            where += " AND seq > ?"
            args.append(after)
        if before is not None:
            where += " AND seq < ?"
            args.append(before)
        args.append(limit)
        # With ``after`` the first ones above it; otherwise the last ones (read backwards).
        order = "ASC" if after is not None else "DESC"
        sql = f"SELECT data FROM messages WHERE {where} ORDER BY seq {order} LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, args).fetchall())
        found = [_decode_message(data) for (data,) in rows]
        if order == "DESC":
            found.reverse()
        return found

    async def last_seq(self, chat_id: str) -> int:
        """The highest stored seq of a chat, 0 when it has none.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        row = await self._run(
            lambda c: c.execute(
                "SELECT MAX(seq) FROM messages WHERE chat_id = ?", (chat_id,)
            ).fetchone()
        )
        return int(row[0]) if row[0] is not None else 0

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        """The lowest-seq message ``sender`` sent with ``client_msg_id``, if any.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        row = await self._run(
            lambda c: c.execute(
                "SELECT data FROM messages WHERE chat_id = ? AND sender = ? "
                "AND client_msg_id = ? ORDER BY seq LIMIT 1",
                (chat_id, sender, client_msg_id),
            ).fetchone()
        )
        return None if row is None else _decode_message(row[0])


def _read_watermarks(c: sqlite3.Connection, chat_id: str, user: str) -> Watermarks:
    row = c.execute(
        "SELECT delivered_seq, read_seq, updated_ms FROM watermarks WHERE chat_id = ? AND user = ?",
        (chat_id, user),
    ).fetchone()
    return Watermarks(chat_id, user) if row is None else Watermarks(chat_id, user, *row)


def _advance_all(
    c: sqlite3.Connection, targets: Sequence[Watermarks]
) -> tuple[list[Watermarks | None], dict[Member, Watermarks]]:
    """Apply ``targets`` in order (see ``advanced_all``) and store the members that
    moved; the results per target and the rows they were applied to."""
    members = dict.fromkeys((t.chat_id, t.user) for t in targets)
    current = {key: _read_watermarks(c, *key) for key in members}
    results, moved = advanced_all(current, targets)
    c.executemany(
        "INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?, ?, ?)",
        [(w.chat_id, w.user, w.delivered_seq, w.read_seq, w.updated_ms) for w in moved.values()],
    )
    return results, current


class SqliteReceiptStore(SqliteAdapter):
    """A :class:`~chatcore.store.ReceiptStore` in a SQLite file (a path or a shared database)."""

    _schema = _WATERMARKS_SCHEMA

    async def advance(
        self,
        chat_id: str,
        user: str,
        *,
        delivered_seq: int = 0,
        read_seq: int = 0,
        now_ms: int = 0,
    ) -> Watermarks:
        """Raise the watermarks (never lower them); returns them after the update.

        ``updated_ms`` becomes ``now_ms`` only if a watermark moved; a call that moves
        nothing writes nothing. Raises InvalidRequest for a negative seq, Unavailable
        if the file cannot be written, ChatcoreClosed after ``aclose()``.
        """

        target = Watermarks(chat_id, user, delivered_seq, read_seq, now_ms)

        def advance(c: sqlite3.Connection) -> Watermarks:
            (after,), current = _advance_all(c, [target])
            return after or current[(chat_id, user)]

        return await self._run(advance)

    async def advance_many(self, targets: Sequence[Watermarks]) -> list[Watermarks | None]:
        """See :meth:`ReceiptStore.advance_many`: one transaction. Also ``Unavailable``,
        ``ChatcoreClosed``."""
        if not targets:
            return []

        return await self._run(lambda c: _advance_all(c, targets)[0])

    async def get(self, chat_id: str, user: str) -> Watermarks:
        """The watermarks of one member (zeros when none were stored).

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        return await self._run(lambda c: _read_watermarks(c, chat_id, user))

    async def for_chat(self, chat_id: str) -> dict[str, Watermarks]:
        """Every stored member's watermarks in a chat, by user.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        rows = await self._run(
            lambda c: c.execute(
                "SELECT user, delivered_seq, read_seq, updated_ms FROM watermarks "
                "WHERE chat_id = ?",
                (chat_id,),
            ).fetchall()
        )
        return {user: Watermarks(chat_id, user, d, r, ms) for user, d, r, ms in rows}

    async def for_user(self, user: str, chat_ids: Sequence[str]) -> dict[str, Watermarks]:
        """One user's watermarks in several chats, by chat id (zeros when none).

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        wanted = list(dict.fromkeys(chat_ids))

        def read(c: sqlite3.Connection) -> list[tuple[str, int, int, int]]:
            sql = (
                "SELECT chat_id, delivered_seq, read_seq, updated_ms FROM watermarks "
                "WHERE user = ? AND chat_id IN ({marks})"
            )
            return list(select_in(c, sql, wanted, before=(user,)))

        rows = await self._run(read) if wanted else []
        found = {chat_id: Watermarks(chat_id, user, d, r, ms) for chat_id, d, r, ms in rows}
        return {c: found[c] if c in found else Watermarks(c, user) for c in wanted}


def _read_chat(c: sqlite3.Connection, chat_id: str) -> ChatInfo | None:
    row = c.execute(
        "SELECT kind, title, created_ms FROM chats WHERE chat_id = ?", (chat_id,)
    ).fetchone()
    if row is None:
        return None
    kind, title, created_ms = row
    members = c.execute(
        "SELECT user FROM members WHERE chat_id = ? ORDER BY pos", (chat_id,)
    ).fetchall()
    roles = c.execute("SELECT data FROM chat_roles WHERE chat_id = ?", (chat_id,)).fetchone()
    return ChatInfo(
        chat_id,
        kind,
        tuple(u for (u,) in members),
        title,
        created_ms,
        ChatRoles() if roles is None else _decode_roles(roles[0]),
    )


def _write_roles(c: sqlite3.Connection, chat_id: str, roles: ChatRoles) -> None:
    c.execute("INSERT OR REPLACE INTO chat_roles VALUES (?, ?)", (chat_id, _encode(roles)))


def _add_members(c: sqlite3.Connection, chat_id: str, users: Sequence[str], first_pos: int) -> None:
    c.executemany(
        "INSERT INTO members VALUES (?, ?, ?)",
        [(chat_id, user, first_pos + i) for i, user in enumerate(users)],
    )
    c.executemany("INSERT INTO user_chats VALUES (?, ?)", [(user, chat_id) for user in users])


class SqliteMembershipStore(SqliteAdapter):
    """A :class:`~chatcore.store.MembershipStore` in a SQLite file (a path or a shared database)."""

    _schema = _MEMBERSHIP_SCHEMA

    async def create_chat(self, chat: ChatInfo) -> ChatInfo:
        """Store a new chat, or return the stored one unchanged if the id exists.

        Members keep their given order; a repeated member is stored once. Raises
        Unavailable if the file cannot be written, ChatcoreClosed after ``aclose()``.
        """
        stored = msgspec.structs.replace(chat, members=unique(chat.members))

        def create(c: sqlite3.Connection) -> ChatInfo:
            existing = _read_chat(c, chat.chat_id)
            if existing is not None:
                return existing
            c.execute(
                "INSERT INTO chats VALUES (?, ?, ?, ?)",
                (chat.chat_id, chat.kind, chat.title, chat.created_ms),
            )
            _add_members(c, chat.chat_id, stored.members, 0)
            if stored.roles != ChatRoles():
                _write_roles(c, chat.chat_id, stored.roles)
            return stored

        return await self._run(create)

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        """The chat with its current members, or None.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        return await self._run(lambda c: _read_chat(c, chat_id))

    async def get_chats(self, chat_ids: Iterable[str]) -> dict[str, ChatInfo]:
        """The chats of ``chat_ids`` that exist, by id, read in one visit to the file.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        wanted = list(dict.fromkeys(chat_ids))

        def read(c: sqlite3.Connection) -> dict[str, ChatInfo]:
            found = ((chat_id, _read_chat(c, chat_id)) for chat_id in wanted)
            return {chat_id: chat for chat_id, chat in found if chat is not None}

        return await self._run(read) if wanted else {}

    async def update_members(
        self, chat_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> ChatInfo:
        """Append ``add`` (new members only), then take out ``remove``; returns the chat.

        Raises NotFound if there is no such chat, Unavailable if the file cannot be
        written, ChatcoreClosed after ``aclose()``.
        """

        def update(c: sqlite3.Connection) -> ChatInfo:
            chat = _read_chat(c, chat_id)
            if chat is None:
                raise NotFound(f"no chat {chat_id!r}")
            members = changed_members(chat.members, add=add, remove=remove)
            before, after = set(chat.members), set(members)
            gone = [(chat_id, u) for u in chat.members if u not in after]
            c.executemany("DELETE FROM members WHERE chat_id = ? AND user = ?", gone)
            c.executemany("DELETE FROM user_chats WHERE chat_id = ? AND user = ?", gone)
            (top,) = c.execute(
                "SELECT COALESCE(MAX(pos), -1) FROM members WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            _add_members(c, chat_id, [u for u in members if u not in before], top + 1)
            return msgspec.structs.replace(chat, members=members)

        return await self._run(update)

    async def set_roles(
        self, chat_id: str, roles: ChatRoles, *, expected: ChatRoles | None = None
    ) -> ChatInfo:
        """Replace the chat's roles (if still ``expected``, when given: read and written
        in one transaction); raises NotFound, Unavailable if the file cannot be written,
        ChatcoreClosed after ``aclose()``."""

        def update(c: sqlite3.Connection) -> ChatInfo:
            chat = _read_chat(c, chat_id)
            if chat is None:
                raise NotFound(f"no chat {chat_id!r}")
            if expected is not None and chat.roles != expected:
                return chat
            _write_roles(c, chat_id, roles)
            return msgspec.structs.replace(chat, roles=roles)

        return await self._run(update)

    async def chats_of(self, user: str) -> list[str]:
        """The ids of the chats ``user`` is a member of, sorted.

        Raises Unavailable if the file cannot be read, ChatcoreClosed after ``aclose()``.
        """
        rows = await self._run(
            lambda c: c.execute(
                "SELECT chat_id FROM user_chats WHERE user = ? ORDER BY chat_id", (user,)
            ).fetchall()
        )
        return [chat_id for (chat_id,) in rows]
