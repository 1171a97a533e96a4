"""An in-memory PartitionedLog: ordered and atomic, not durable; single process only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from chatcore.log._base import LogRecord, OutRecord, RecordPosition
from chatcore.log._embedded import EmbeddedLog, OffsetCommit, TopicMeta

__all__ = ["MemoryLog"]

T = TypeVar("T")


class _MemoryStorage:
    def __init__(self) -> None:
        self._meta: dict[str, TopicMeta] = {}
        self._records: dict[tuple[str, int], list[LogRecord]] = {}
        self._compacted: dict[tuple[str, int], dict[str, bytes]] = {}
        self._ends: dict[tuple[str, int], int] = {}
        self._offsets: dict[tuple[str, str], dict[int, int]] = {}

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
        return positions

    def read(self, topic: str, positions: Mapping[int, int], limit: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        for p, offset in positions.items():
            if len(out) >= limit:
                break
            out.extend(self._records.get((topic, p), [])[offset : offset + limit - len(out)])
        return out

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
    """A log held in this process's memory. Lost when the process exits."""

    def __init__(self) -> None:
        super().__init__(_MemoryStorage(), _direct)
