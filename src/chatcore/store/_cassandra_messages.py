"""The Cassandra MessageStore: partitions of ``bucket_size`` seqs, found by a bucket index.

How this works: a message lives in partition ``(chat_id, seq // bucket_size)``, so a
partition holds at most ``bucket_size`` messages and any seq is one read away.
``chat_buckets`` lists the buckets a chat has (written before the messages, never
removed), newest first: ranges and ``last_seq`` read it to walk only buckets that
exist, however sparse the seqs. Message rows are written with a timestamp that
falls as time passes, so the first write of a ``(chat_id, seq)`` wins, as the port
wants, with no read before the write. ``client_msgs`` maps a sender's client
message id to its seqs for ``find_client_msg``, with a TTL (the dedupe window).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.model import StoredMessage
from chatcore.store._cassandra_session import CassandraAdapter, CassandraSession, Statement
from chatcore.store._rules import check_limit, check_messages

__all__ = ["CassandraMessageStore"]

_MAX_SEQ = 2**63 - 1  # Cassandra's bigint
_BUCKET_PAGE = 8  # buckets read from the bucket index at a time
_BATCH_ROWS = 100  # statements per single-partition batch
_MAX_LIMIT = 2**31 - 1  # CQL's LIMIT is an int
_KNOWN_BUCKETS = 100_000  # (chat, bucket) pairs remembered as already indexed

_encode = msgspec.msgpack.Encoder().encode
_decode_message = msgspec.msgpack.Decoder(StoredMessage).decode


class CassandraMessageStore(CassandraAdapter):
    """A :class:`~chatcore.store.MessageStore` in Cassandra, partitioned by (chat, seq bucket)."""

    _STATEMENTS: ClassVar[dict[str, str]] = {
        "index_bucket": "INSERT INTO {ks}.chat_buckets (chat_id, bucket) VALUES (?, ?)",
        "insert": "INSERT INTO {ks}.messages (chat_id, bucket, seq, data) VALUES (?, ?, ?, ?) "
        "USING TIMESTAMP ?",
        "index_client_msg": "INSERT INTO {ks}.client_msgs (chat_id, sender, client_msg_id, seq) "
        "VALUES (?, ?, ?, ?) USING TTL ?",
        "buckets_up": "SELECT bucket FROM {ks}.chat_buckets WHERE chat_id = ? AND bucket >= ? "
        "AND bucket <= ? ORDER BY bucket ASC LIMIT ?",
        "buckets_down": "SELECT bucket FROM {ks}.chat_buckets WHERE chat_id = ? AND bucket >= ? "
        "AND bucket <= ? ORDER BY bucket DESC LIMIT ?",
        "range_up": "SELECT data FROM {ks}.messages WHERE chat_id = ? AND bucket = ? "
        "AND seq >= ? AND seq <= ? ORDER BY seq ASC LIMIT ?",
        "range_down": "SELECT data FROM {ks}.messages WHERE chat_id = ? AND bucket = ? "
        "AND seq >= ? AND seq <= ? ORDER BY seq DESC LIMIT ?",
        "client_msg_seqs": "SELECT seq FROM {ks}.client_msgs WHERE chat_id = ? AND sender = ? "
        "AND client_msg_id = ?",
        "at": "SELECT data FROM {ks}.messages WHERE chat_id = ? AND bucket = ? AND seq = ?",
    }

    def __init__(
        self,
        db: CassandraSession,
        prepared: Mapping[str, Any],
        *,
        bucket_size: int,
        client_msg_ttl: int | None,
    ) -> None:
        super().__init__(db, prepared)
        self.bucket_size = bucket_size
        self._ttl = client_msg_ttl or 0  # 0: no TTL
        self._known_buckets: set[tuple[str, int]] = set()
        self._last_timestamp = 0

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        """Store messages; an existing ``(chat_id, seq)`` keeps its first write.

        Raises InvalidRequest (nothing stored) if a seq is below 1 or above 2**63 - 1,
        Unavailable if
        Cassandra fails (some may be stored: appending again is safe),
        ChatcoreClosed after ``aclose()``.
        """
        self._check()
        check_messages(messages)
        too_high = [m.seq for m in messages if m.seq > _MAX_SEQ]
        if too_high:
            raise InvalidRequest(f"a seq must fit a signed 64-bit integer, got {too_high[0]}")
        first: dict[tuple[str, int], StoredMessage] = {}
        for m in messages:
            first.setdefault((m.chat_id, m.seq), m)
        partitions: dict[tuple[str, int], list[StoredMessage]] = defaultdict(list)
        senders: dict[tuple[str, str], list[StoredMessage]] = defaultdict(list)
        for m in first.values():
            partitions[(m.chat_id, m.seq // self.bucket_size)].append(m)
            senders[(m.chat_id, m.sender)].append(m)
        # The bucket index first: a message is only reachable through its bucket's entry.
        new = [key for key in partitions if key not in self._known_buckets]
        await self._db.execute_all([(self._q["index_bucket"], key) for key in new])
        if len(self._known_buckets) + len(new) > _KNOWN_BUCKETS:
            self._known_buckets.clear()
        self._known_buckets.update(new)
        ts = self._first_wins_timestamp()
        insert, index = self._q["insert"], self._q["index_client_msg"]
        writes: list[Statement] = []
        for (chat_id, bucket), part in partitions.items():
            rows = [(chat_id, bucket, m.seq, _encode(m), ts) for m in part]
            writes += self._batches(insert, rows)
        for (chat_id, sender), sent in senders.items():
            keys = [(chat_id, sender, m.client_msg_id, m.seq, self._ttl) for m in sent]
            writes += self._batches(index, keys)
        await self._db.execute_all(writes)

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        """Store newer states of messages (see the port).

        Written with ``changed_seq`` as write timestamp: above every first-wins append
        timestamp (those are negative), and a newer state beats an older one whatever
        order the writes land in. Raises InvalidRequest, Unavailable (replacing again
        is safe), ChatcoreClosed.
        """
        self._check()
        check_messages(messages)
        partitions: dict[tuple[str, int], list[StoredMessage]] = defaultdict(list)
        for m in messages:
            partitions[(m.chat_id, m.seq // self.bucket_size)].append(m)
        new = [key for key in partitions if key not in self._known_buckets]
        await self._db.execute_all([(self._q["index_bucket"], key) for key in new])
        if len(self._known_buckets) + len(new) > _KNOWN_BUCKETS:
            self._known_buckets.clear()
        self._known_buckets.update(new)
        writes: list[Statement] = []
        for (chat_id, bucket), part in partitions.items():
            rows = [(chat_id, bucket, m.seq, _encode(m), max(m.changed_seq, 1)) for m in part]
            writes += self._batches(self._q["insert"], rows)
        await self._db.execute_all(writes)

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        """Up to ``limit`` messages ascending by seq; see ``MessageStore.range``.

        Reads the chat's buckets one by one (ascending from ``after``, else
        descending from ``before`` or the top) until it has ``limit``. Raises
        InvalidRequest for a negative limit, Unavailable if Cassandra fails,
        ChatcoreClosed after ``aclose()``.
        """
        self._check()
        check_limit(limit)
        low = 1 if after is None else max(after + 1, 1)  # inclusive bounds
        high = _MAX_SEQ if before is None else min(before - 1, _MAX_SEQ)
        if limit == 0 or low > high:
            return []
        ascending = after is not None
        found: list[StoredMessage] = []
        first, last = low // self.bucket_size, high // self.bucket_size
        index = self._q["buckets_up" if ascending else "buckets_down"]
        read = self._q["range_up" if ascending else "range_down"]
        while first <= last:
            rows = await self._db.execute(index, (chat_id, first, last, _BUCKET_PAGE))
            buckets = [int(row["bucket"]) for row in rows]
            for bucket in buckets:
                want = min(limit - len(found), self.bucket_size, _MAX_LIMIT)
                rows = await self._db.execute(read, (chat_id, bucket, low, high, want))
                found += [_decode_message(row["data"]) for row in rows]
                if len(found) >= limit:
                    break
            if len(found) >= limit or len(buckets) < _BUCKET_PAGE:
                break
            if ascending:
                first = buckets[-1] + 1
            else:
                last = buckets[-1] - 1
        if not ascending:
            found.reverse()
        return found

    async def last_seq(self, chat_id: str) -> int:
        """The highest stored seq of a chat, 0 when it has none.

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        latest = await self.range(chat_id, limit=1)
        return latest[0].seq if latest else 0

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        """The lowest-seq message ``sender`` sent with ``client_msg_id`` within the TTL, if any.

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        rows = await self._db.execute(self._q["client_msg_seqs"], (chat_id, sender, client_msg_id))
        for row in rows:  # ascending seq; usually exactly one
            seq = int(row["seq"])
            found = await self._db.execute(self._q["at"], (chat_id, seq // self.bucket_size, seq))
            if found:
                return _decode_message(found[0]["data"])
        return None

    def _batches(self, statement: Any, rows: Sequence[Sequence[object]]) -> list[Statement]:
        """Unlogged batches of at most ``_BATCH_ROWS`` rows (rows of one partition)."""
        return [
            (CassandraSession.batch([(statement, r) for r in rows[i : i + _BATCH_ROWS]]), ())
            for i in range(0, len(rows), _BATCH_ROWS)
        ]

    def _first_wins_timestamp(self) -> int:
        """A write timestamp that falls as time passes, so a cell's earliest write wins."""
        ts = min(-(time.time_ns() // 1000), self._last_timestamp - 1)
        self._last_timestamp = ts
        return ts
