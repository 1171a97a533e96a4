"""A PartitionedLog in one SQLite file: durable and ordered; one process at a time.

Compacted topics keep only the latest value per key (compaction is eager).

Appends and transactions commit with ``synchronous=FULL`` (durable on power loss
when they return). A batch that only commits consumer offsets (``commit()`` of an
idempotent stage) commits with ``synchronous=NORMAL``: see
:class:`~chatcore._sqlite.SqliteDatabase` and docs/operations.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from chatcore._sqlite import SqliteDatabase, Synchronous
from chatcore.log._base import LogRecord, OutRecord, RecordPosition
from chatcore.log._embedded import EmbeddedLog, OffsetCommit, TopicMeta

__all__ = ["SqliteLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY, partitions INTEGER NOT NULL, compacted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL,
    key TEXT NOT NULL, value BLOB NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (topic, part, off)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS compacted (
    topic TEXT NOT NULL, part INTEGER NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (topic, part, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ends (
    topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL,
    PRIMARY KEY (topic, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
    grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL,
    PRIMARY KEY (grp, topic, part)) WITHOUT ROWID;
"""


def _read(
    c: sqlite3.Connection, topic: str, positions: Mapping[int, int], limit: int
) -> list[LogRecord]:
    out: list[LogRecord] = []
    for p, offset in positions.items():
        if len(out) >= limit:
            break
        rows = c.execute(
            "SELECT off, key, value, ts FROM records WHERE topic=? AND part=? AND off>=? "
            "ORDER BY off LIMIT ?",
            (topic, p, offset, limit - len(out)),
        ).fetchall()
        out.extend(LogRecord(topic, p, o, k, v, ts) for o, k, v, ts in rows)
    return out


class _SqliteStorage:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        db.execute_script(_SCHEMA)
        self._meta = self.topics()

    def create_topic(self, topic: str, meta: TopicMeta) -> None:
        self._meta[topic] = meta
        self._db.transaction(
            lambda c: c.execute(
                "INSERT OR IGNORE INTO topics VALUES (?, ?, ?)",
                (topic, meta.partitions, int(meta.compacted)),
            )
        )

    def topics(self) -> dict[str, TopicMeta]:
        rows = self._db.transaction(lambda c: c.execute("SELECT * FROM topics").fetchall())
        return {t: TopicMeta(n, bool(compacted)) for t, n, compacted in rows}

    def write(
        self,
        records: Sequence[tuple[OutRecord, int]],
        now_ms: int,
        commits: Sequence[OffsetCommit] = (),
        *,
        durable: bool = True,
    ) -> list[RecordPosition]:
        return self._db.transaction(
            lambda c: self._write(c, records, now_ms, commits), relaxed=not durable
        )

    def _write(
        self,
        c: sqlite3.Connection,
        records: Sequence[tuple[OutRecord, int]],
        now_ms: int,
        commits: Sequence[OffsetCommit],
    ) -> list[RecordPosition]:
        ends: dict[tuple[str, int], int] = {}
        compacted = {t for t, meta in self._meta.items() if meta.compacted}
        positions = []
        rows = []
        for r, p in records:
            key = (r.topic, p)
            if key not in ends:
                row = c.execute(
                    "SELECT next_off FROM ends WHERE topic=? AND part=?", key
                ).fetchone()
                ends[key] = row[0] if row else 0
            offset = ends[key]
            ends[key] = offset + 1
            positions.append(RecordPosition(p, offset))
            if r.topic in compacted:
                if r.value:
                    c.execute(
                        "INSERT OR REPLACE INTO compacted VALUES (?, ?, ?, ?)",
                        (r.topic, p, r.key, r.value),
                    )
                else:
                    c.execute(
                        "DELETE FROM compacted WHERE topic=? AND part=? AND key=?",
                        (r.topic, p, r.key),
                    )
            else:
                rows.append((r.topic, p, offset, r.key, r.value, now_ms))
        c.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?)", rows)
        c.executemany(
            "INSERT OR REPLACE INTO ends VALUES (?, ?, ?)",
            [(t, p, n) for (t, p), n in ends.items()],
        )
        c.executemany(
            "INSERT OR REPLACE INTO group_offsets VALUES (?, ?, ?, ?)",
            [(m.group, m.topic, p, o) for m in commits for p, o in m.offsets.items()],
        )
        return positions

    def read(self, topic: str, positions: Mapping[int, int], limit: int) -> list[LogRecord]:
        return self._db.transaction(lambda c: _read(c, topic, positions, limit))

    def read_now(
        self, topic: str, positions: Mapping[int, int], limit: int
    ) -> list[LogRecord] | None:
        # A consumer reads the tail it was just told about: pages in the cache, a few
        # rows, cheaper on the loop's thread (a WAL reader, never waiting on the
        # writer) than a round trip to the worker thread. Busy (a rare WAL reset or
        # recovery): None, and the worker reads.
        try:
            return self._db.read_now(lambda c: _read(c, topic, positions, limit))
        except sqlite3.OperationalError:
            return None

    def committed(self, group: str, topic: str) -> dict[int, int]:
        rows = self._db.transaction(
            lambda c: c.execute(
                "SELECT part, next_off FROM group_offsets WHERE grp=? AND topic=?", (group, topic)
            ).fetchall()
        )
        return dict(rows)

    def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        rows = self._db.transaction(
            lambda c: c.execute(
                "SELECT key, value FROM compacted WHERE topic=? AND part=?", (topic, partition)
            ).fetchall()
        )
        return dict(rows)

    def end_offsets(self, topic: str) -> dict[int, int]:
        def ends(c: sqlite3.Connection) -> dict[int, int]:
            (n,) = c.execute("SELECT partitions FROM topics WHERE topic=?", (topic,)).fetchone()
            found = dict(c.execute("SELECT part, next_off FROM ends WHERE topic=?", (topic,)))
            return {p: found.get(p, 0) for p in range(n)}

        return self._db.transaction(ends)

    def close(self) -> None:
        self._db.close()


class SqliteLog(EmbeddedLog):
    """A log in the SQLite file at ``path`` (created if missing)."""

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        db = SqliteDatabase(path, synchronous=synchronous)
        self._db = db
        super().__init__(_SqliteStorage(db), db.offload)
