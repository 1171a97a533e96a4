"""An in-memory PartitionedLog: ordered and atomic, not durable; single process only.

Retention: a record is forgotten once every consumer group of its topic has committed
past it. A group counts from the moment a consumer of it is made, or it is named with
``expect_group``; one that has not committed yet keeps everything. Offsets keep
counting; a group made later starts at its committed offset (0), that is at the
oldest record still held.
The log is a pipe here, not an archive: the MessageStore keeps the history.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from chatcore.log._base import LogRecord, OutRecord, RecordPosition
from chatcore.log._embedded import EmbeddedConsumer, EmbeddedLog, OffsetCommit, TopicMeta

__all__ = ["MemoryLog"]

T = TypeVar("T")


class _MemoryStorage:
    def __init__(self) -> None:
        self._meta: dict[str, TopicMeta] = {}
        self._records: dict[tuple[str, int], list[LogRecord]] = {}
        self._compacted: dict[tuple[str, int], dict[str, bytes]] = {}
        self._ends: dict[tuple[str, int], int] = {}
        self._offsets: dict[tuple[str, str], dict[int, int]] = {}
        self._base: dict[tuple[str, int], int] = {}  # offset of the first record held
        self._readers: dict[str, set[str]] = {}  # topic -> consumer groups

    def add_reader(self, topic: str, group: str) -> None:
        self._readers.setdefault(topic, set()).add(group)

    def retained(self, topic: str) -> int:
        return sum(len(rs) for (t, _), rs in self._records.items() if t == topic)

    def _trim(self, topic: str) -> None:
        groups = self._readers.get(topic)
        if not groups:
            return
        for p in range(self._meta[topic].partitions):
            key = (topic, p)
            floor = min(self._offsets.get((g, topic), {}).get(p, 0) for g in groups)
            base = self._base.get(key, 0)
            if floor > base:
                del self._records.get(key, [])[: floor - base]
                self._base[key] = floor

    def create_topic(self, topic: str, meta: TopicMeta) -> None:
        self._meta[topic] = meta

    def topics(self) -> dict[str, TopicMeta]:
        return dict(self._meta)

    def write(
        self,
        records: Sequence[tuple[OutRecord, int]],
        now_ms: int,
        commits: Sequence[OffsetCommit] = (),
        *,
        durable: bool = True,
    ) -> list[RecordPosition]:
        positions = []
        for r, p in records:
            key = (r.topic, p)
            offset = self._ends.get(key, 0)
            self._ends[key] = offset + 1
            positions.append(RecordPosition(p, offset))
            if self._meta[r.topic].compacted:
                state = self._compacted.setdefault(key, {})
                if r.value:
                    state[r.key] = r.value
                else:
                    state.pop(r.key, None)
            else:
                record = LogRecord(r.topic, p, offset, r.key, r.value, now_ms)
                self._records.setdefault(key, []).append(record)
        for commit in commits:
            self._offsets.setdefault((commit.group, commit.topic), {}).update(commit.offsets)
        for topic in {commit.topic for commit in commits}:
            self._trim(topic)
        return positions

    def read(self, topic: str, positions: Mapping[int, int], limit: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        for p, offset in positions.items():
            if len(out) >= limit:
                break
            start = max(offset - self._base.get((topic, p), 0), 0)
            out.extend(self._records.get((topic, p), [])[start : start + limit - len(out)])
        return out

    read_now = read  # in memory: nothing to wait for

    def committed(self, group: str, topic: str) -> dict[int, int]:
        return dict(self._offsets.get((group, topic), {}))

    def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        return dict(self._compacted.get((topic, partition), {}))

    def end_offsets(self, topic: str) -> dict[int, int]:
        n = self._meta[topic].partitions
        return {p: self._ends.get((topic, p), 0) for p in range(n)}

    def close(self) -> None:
        pass


async def _direct(fn: Callable[[], T]) -> T:
    return fn()


class MemoryLog(EmbeddedLog):
    """A log held in this process's memory. Lost when the process exits.

    Holds each record until every consumer group of its topic has committed past it.
    """

    def __init__(self) -> None:
        self._memory = _MemoryStorage()
        super().__init__(self._memory, _direct)

    def consumer(self, topic: str, *, group: str) -> EmbeddedConsumer:
        self._memory.add_reader(topic, group)
        return super().consumer(topic, group=group)

    def expect_group(self, topic: str, group: str) -> None:
        """Keep the records of ``topic`` until ``group`` has committed past them."""
        self._memory.add_reader(topic, group)

    def retained(self, topic: str) -> int:
        """How many records of ``topic`` are held now (all partitions)."""
        return self._memory.retained(topic)
