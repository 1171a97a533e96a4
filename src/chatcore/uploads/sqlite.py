"""``UploadLedger`` in SQLite: durable, one process at a time.

Table ``uploads (blob, user)`` holding the msgpack :class:`~chatcore.uploads.Upload`;
``upload_refs (blob)`` the blobs a message referenced.
Takes a file path (opened and closed by the ledger) or an open, shared
:class:`~chatcore._sqlite.SqliteDatabase`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import msgspec

from chatcore._sqlite import SqliteAdapter, select_in
from chatcore.uploads._base import Upload
from chatcore.uploads._rules import check_upload

__all__ = ["SqliteUploadLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    blob TEXT NOT NULL, user TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (blob, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upload_refs (blob TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID;
"""

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Upload).decode


class SqliteUploadLedger(SqliteAdapter):
    """Upload records in a SQLite file (a path or a shared database).

    Raises Unavailable if the file cannot be opened or the tables cannot be created.
    """

    _schema = _SCHEMA

    async def record(self, upload: Upload) -> None:
        check_upload(upload)
        data = _encode(upload)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO uploads (blob, user, data) VALUES (?, ?, ?)",
                (upload.blob, upload.user, data),
            )

        await self._run(write)

    async def get(self, user: str, blob: str) -> Upload | None:
        def read(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT data FROM uploads WHERE blob = ? AND user = ?", (blob, user)
            ).fetchone()
            return None if row is None else bytes(row[0])

        data = await self._run(read)
        return None if data is None else _decode(data)

    async def forget(self, blob: str) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM uploads WHERE blob = ?", (blob,)).rowcount

        return await self._run(delete)

    async def reference(self, blobs: Sequence[str]) -> None:
        rows = [(blob,) for blob in dict.fromkeys(blobs)]
        if rows:
            await self._run(
                lambda conn: conn.executemany(
                    "INSERT OR IGNORE INTO upload_refs (blob) VALUES (?)", rows
                )
            )

    async def referenced(self, blobs: Sequence[str]) -> set[str]:
        wanted = list(dict.fromkeys(blobs))

        def read(conn: sqlite3.Connection) -> set[str]:
            sql = "SELECT blob FROM upload_refs WHERE blob IN ({marks})"
            return {row[0] for row in select_in(conn, sql, wanted)}

        return await self._run(read) if wanted else set()
