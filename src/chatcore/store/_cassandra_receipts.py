"""The Cassandra ReceiptStore: each watermark a max-register, with no read-modify-write race.

How this works: ``advance`` reads the member's row, applies the one watermark rule
(:func:`chatcore.receipts.watermarks.advance`), and writes only the values that
moved, each with the value itself as write timestamp (``updated_ms`` with
``now_ms``). Cassandra keeps the cell with the highest timestamp, so concurrent or
replayed receipts, in any order and on any replica, end at the maximum: the same
join as :func:`chatcore.receipts.watermarks.merge`, without a lightweight
transaction. The three cells of a row are written in one single-partition batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from chatcore.errors import InvalidRequest
from chatcore.model import Watermarks
from chatcore.receipts.watermarks import Member
from chatcore.store._cassandra_session import CassandraAdapter, CassandraSession, Row, Statement
from chatcore.store._rules import advanced_all

__all__ = ["CassandraReceiptStore"]

_MAX_SEQ = 2**63 - 1  # Cassandra's bigint


def _watermarks(chat_id: str, user: str, row: Row) -> Watermarks:
    return Watermarks(
        chat_id,
        user,
        delivered_seq=row["delivered_seq"] or 0,
        read_seq=row["read_seq"] or 0,
        updated_ms=row["updated_ms"] or 0,
    )


class CassandraReceiptStore(CassandraAdapter):
    """A :class:`~chatcore.store.ReceiptStore` in Cassandra; each watermark is a max-register."""

    _STATEMENTS: ClassVar[dict[str, str]] = {
        "get": "SELECT delivered_seq, read_seq, updated_ms FROM {ks}.watermarks "
        "WHERE chat_id = ? AND user_id = ?",
        "of_chat": "SELECT user_id, delivered_seq, read_seq, updated_ms FROM {ks}.watermarks "
        "WHERE chat_id = ?",
        # The value is also the write timestamp: the highest value wins, in any order.
        "raise_delivered": "UPDATE {ks}.watermarks USING TIMESTAMP ? SET delivered_seq = ? "
        "WHERE chat_id = ? AND user_id = ?",
        "raise_read": "UPDATE {ks}.watermarks USING TIMESTAMP ? SET read_seq = ? "
        "WHERE chat_id = ? AND user_id = ?",
        "raise_updated": "UPDATE {ks}.watermarks USING TIMESTAMP ? SET updated_ms = ? "
        "WHERE chat_id = ? AND user_id = ?",
    }

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

        ``updated_ms`` becomes ``now_ms`` only if a watermark moved (with concurrent
        receipts: the highest ``now_ms`` of those that moved one); a call that moves
        nothing writes nothing. Raises InvalidRequest for a seq below 0 or above
        2**63 - 1, Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        target = Watermarks(chat_id, user, delivered_seq, read_seq, now_ms)
        (after,), current = await self._advance([target])
        return after or current.get((chat_id, user)) or Watermarks(chat_id, user)

    async def advance_many(self, targets: Sequence[Watermarks]) -> list[Watermarks | None]:
        """See :meth:`ReceiptStore.advance_many`: two round trips in all, the members'
        rows read concurrently, then one single-partition batch per member that moved,
        written concurrently. Also InvalidRequest above 2**63 - 1, Unavailable,
        ChatcoreClosed."""
        return (await self._advance(targets))[0]

    async def _advance(
        self, targets: Sequence[Watermarks]
    ) -> tuple[list[Watermarks | None], dict[Member, Watermarks]]:
        """The results of ``targets``, and the stored rows they were applied to."""
        self._check()
        for t in targets:
            if not (0 <= t.delivered_seq <= _MAX_SEQ and 0 <= t.read_seq <= _MAX_SEQ):
                raise InvalidRequest(
                    f"watermarks must be 0 to 2**63 - 1, got delivered={t.delivered_seq} "
                    f"read={t.read_seq}"
                )
        members = list(dict.fromkeys((t.chat_id, t.user) for t in targets))
        rows = await self._db.execute_all([(self._q["get"], key) for key in members])
        current = {
            key: _watermarks(*key, found[0])
            for key, found in zip(members, rows, strict=True)
            if found
        }
        results, moved = advanced_all(current, targets)
        batches = []
        for key, after in moved.items():
            before = current.get(key) or Watermarks(*key)
            batches.append((CassandraSession.batch(self._raise(before, after)), ()))
        await self._db.execute_all(batches)  # each one partition: atomic and isolated
        return results, current

    def _raise(self, before: Watermarks, after: Watermarks) -> list[Statement]:
        """The writes that take a member's row from ``before`` to ``after``."""
        key = (after.chat_id, after.user)
        ms = after.updated_ms
        writes: list[Statement] = [(self._q["raise_updated"], (ms, ms, *key))]
        if after.delivered_seq != before.delivered_seq:
            d = after.delivered_seq
            writes.append((self._q["raise_delivered"], (d, d, *key)))
        if after.read_seq != before.read_seq:
            writes.append((self._q["raise_read"], (after.read_seq, after.read_seq, *key)))
        return writes

    async def get(self, chat_id: str, user: str) -> Watermarks:
        """The watermarks of one member (zeros when none were stored).

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        rows = await self._db.execute(self._q["get"], (chat_id, user))
        return _watermarks(chat_id, user, rows[0]) if rows else Watermarks(chat_id, user)

    async def for_chat(self, chat_id: str) -> dict[str, Watermarks]:
        """Every stored member's watermarks in a chat, by user.

        Raises Unavailable if Cassandra fails, ChatcoreClosed after ``aclose()``.
        """
        self._check()
        rows = await self._db.execute(self._q["of_chat"], (chat_id,))
        return {row["user_id"]: _watermarks(chat_id, row["user_id"], row) for row in rows}

    async def for_user(self, user: str, chat_ids: Sequence[str]) -> dict[str, Watermarks]:
        """One user's watermarks in several chats, by chat id (zeros when none).

        One read per chat, run concurrently. Raises Unavailable if Cassandra fails,
        ChatcoreClosed after ``aclose()``.
        """
        self._check()
        wanted = list(dict.fromkeys(chat_ids))
        results = await self._db.execute_all([(self._q["get"], (c, user)) for c in wanted])
        return {
            c: _watermarks(c, user, rows[0]) if rows else Watermarks(c, user)
            for c, rows in zip(wanted, results, strict=True)
        }
