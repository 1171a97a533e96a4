"""The PartitionedLog port: an ordered, durable, partitioned log with consumer groups.

This is the source of truth of the pipeline. It promises, like Kafka:

* records with the same key go to the same partition (unless a partition is named);
* within a partition, offsets start at 0 and increase, and every consumer sees that
  order; the embedded backends number records 0, 1, 2, ..., Kafka may leave gaps
  (transaction markers take offsets), so an offset is not a record count;
* ``append`` returns only when the records are durable;
* a consumer group shares a topic's partitions among its live members; each partition
  has one owner at a time, and a member that lost a partition is *fenced*: its
  commits raise :class:`~chatcore.errors.Fenced`;
* ``commit_transaction`` appends output records **and** commits input offsets
  atomically (consume-transform-produce): after a crash either both happened or
  neither did. On Kafka the unit is one input partition: its offset commits
  together with the outputs attributed to it (an output goes with the input
  partition that has its partition number, else with the call's lowest one);
* compacted topics keep the latest value per key (an empty value deletes the key);
  they hold state changelogs and are read whole with ``read_compacted``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import msgspec

from chatcore._resource import AsyncResource

__all__ = [
    "ConsumerBatch",
    "LogConsumer",
    "LogRecord",
    "OutRecord",
    "PartitionedLog",
    "RecordPosition",
    "RetainingLog",
]


class LogRecord(msgspec.Struct, frozen=True):
    """One record read from the log."""

    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    timestamp_ms: int


class OutRecord(NamedTuple):
    """A record to append. ``partition=None`` lets the key choose it."""

    topic: str
    key: str
    value: bytes
    partition: int | None = None


class RecordPosition(NamedTuple):
    """Where an appended record landed."""

    partition: int
    offset: int


class ConsumerBatch(NamedTuple):
    """What one ``poll`` returns.

    ``assigned`` and ``revoked`` list the partitions this member gained and lost
    since its previous poll; a stateful consumer restores state for ``assigned``
    before it handles ``records`` and drops state for ``revoked``.
    """

    records: list[LogRecord]
    assigned: frozenset[int] = frozenset()
    revoked: frozenset[int] = frozenset()


class LogConsumer(AsyncResource, Protocol):
    """One member of a consumer group on one topic. Use as an async context manager."""

    @property
    def assignment(self) -> frozenset[int]:
        """The partitions this member owns as of its last poll."""
        ...

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        """Return the next records of owned partitions, waiting up to ``timeout_s`` for some.

        After a partition is (re)assigned, reading resumes at its committed offset.
        During a rebalance it first waits for the group to settle, which may take
        longer than ``timeout_s`` (on Kafka up to the rebalance timeout). Raises
        :class:`~chatcore.errors.Unavailable` when the backend is down,
        :class:`~chatcore.errors.ChatcoreClosed` outside ``async with``.
        """
        ...

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit, per partition, the offset of the next record to read.

        Raises :class:`~chatcore.errors.Fenced` if a partition is no longer owned.
        """
        ...

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        """Append ``outputs`` and commit ``offsets`` atomically; both or neither.

        On Kafka atomicity is per input partition (see the module docstring): a
        failure between two partitions' commits can leave one committed. Raises
        :class:`~chatcore.errors.Fenced` if a partition is no longer owned (nothing
        is written), :class:`~chatcore.errors.Unavailable` on backend failure.
        """
        ...

    async def aclose(self) -> None:
        """Leave the group. Idempotent.

        May wait, bounded (on Kafka by the session timeout), until the partitions
        have moved to the other members.
        """
        ...


class PartitionedLog(AsyncResource, Protocol):
    """An ordered, durable, partitioned log. Use as an async context manager."""

    async def create_topic(self, topic: str, *, partitions: int, compacted: bool = False) -> None:
        """Create ``topic`` unless it exists.

        Raises :class:`~chatcore.errors.InvalidRequest` if it exists with another
        partition count.
        """
        ...

    async def partition_count(self, topic: str) -> int:
        """The number of partitions of ``topic``; :class:`~chatcore.errors.NotFound` if none."""
        ...

    async def append(self, records: Sequence[OutRecord]) -> list[RecordPosition]:
        """Append records durably; returns their positions in the same order.

        Raises :class:`~chatcore.errors.Unavailable` when the log cannot take them;
        then some of them may still have been appended (consumers dedupe retries).
        """
        ...

    def consumer(self, topic: str, *, group: str) -> LogConsumer:
        """A new member of ``group`` reading ``topic`` (joins on ``__aenter__``)."""
        ...

    async def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        """The latest value of every live key of one partition of a compacted topic."""
        ...

    async def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get.

        Not a count of records: on Kafka transaction markers take offsets too.
        Raises :class:`~chatcore.errors.NotFound` for a missing topic.
        """
        ...

    async def committed(self, topic: str, *, group: str) -> dict[int, int]:
        """Per partition, the committed offset of ``group`` (0 where none)."""
        ...

    async def backlog(
        self, topic: str, *, group: str, ends: Mapping[int, int] | None = None
    ) -> dict[int, int]:
        """Per partition, how far ``group``'s committed offset is behind ``ends``.

        ``ends`` defaults to :meth:`end_offsets` now. A partition is 0 once ``group``
        has committed every record before its end, even where its committed offset
        is below it because transaction markers follow the last record (Kafka); so
        0 everywhere means ``group`` has consumed everything appended up to ``ends``.
        Otherwise the value counts offsets, not records. Raises
        :class:`~chatcore.errors.NotFound` for a missing topic.
        """
        ...


@runtime_checkable
class RetainingLog(Protocol):
    """An optional capability: a log that forgets a record once every consumer group
    of its topic has committed past it (``MemoryLog``). A group counts from its first
    consumer, or from :meth:`expect_group`; ``ChatNode`` names every pipeline stage's
    group up front, so a stage that starts later (or in another node over the same log)
    misses nothing."""

    def expect_group(self, topic: str, group: str) -> None:
        """Keep the records of ``topic`` until ``group`` has committed past them."""
        ...
