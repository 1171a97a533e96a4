"""The part of the memory and SQLite logs that does not depend on where bytes live.

:class:`EmbeddedLog` implements the :class:`~chatcore.log.PartitionedLog` port over a
small synchronous :class:`LogStorage` (a dict, or a SQLite file). Writes are
group-committed: ``append``, ``commit_transaction`` and ``commit`` calls queue, and
whoever holds the write lock writes everything queued so far in one storage
transaction, so a SQLite file pays one fsync for many senders and stages. Each
queued transaction is checked for fencing when its batch is written; a fenced one
fails alone. Writes are shielded from cancellation so a cancelled caller never
tears a batch that others wait on; a caller cancelled before its write was taken
into a batch is dequeued and writes nothing.

A batch made only of pure offset commits (``commit()``) is written with
``durable=False``: consumers of the embedded log are idempotent stages, so an
offset commit lost to a power failure only replays records. Every batch with a
record or a ``commit_transaction`` in it is durable.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, Self, TypeVar

import anyio

from chatcore._clock import wall_ms
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, Fenced, InvalidRequest, NotFound, Unavailable
from chatcore.log._base import ConsumerBatch, LogRecord, OutRecord, RecordPosition
from chatcore.log._groups import GroupCoordinator

__all__ = [
    "EmbeddedConsumer",
    "EmbeddedLog",
    "LogStorage",
    "Offload",
    "OffsetCommit",
    "TopicMeta",
    "partition_for",
]

T = TypeVar("T")


def partition_for(key: str, partitions: int) -> int:
    """The partition of ``key`` (stable across runs and processes)."""
    return zlib.crc32(key.encode()) % partitions


class Offload(Protocol):
    """Runs one storage call: directly (memory) or on a worker thread (files)."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


class TopicMeta(NamedTuple):
    partitions: int
    compacted: bool


class OffsetCommit(NamedTuple):
    group: str
    topic: str
    offsets: Mapping[int, int]


class LogStorage(Protocol):
    """Synchronous storage under an :class:`EmbeddedLog`; calls never overlap, except
    ``read_now`` (see there)."""

    def create_topic(self, topic: str, meta: TopicMeta) -> None: ...
    def topics(self) -> dict[str, TopicMeta]: ...
    def write(
        self,
        records: Sequence[tuple[OutRecord, int]],
        now_ms: int,
        commits: Sequence[OffsetCommit] = (),
        *,
        durable: bool = True,
    ) -> list[RecordPosition]:
        """Append ``(record, partition)`` pairs and apply ``commits``, all in one transaction.

        ``durable=False`` (only ever with no records): the transaction must survive a
        process crash, and may be lost to a power failure unless a later durable
        write of the same storage has returned.
        """
        ...

    def read(self, topic: str, positions: Mapping[int, int], limit: int) -> list[LogRecord]: ...
    def read_now(
        self, topic: str, positions: Mapping[int, int], limit: int
    ) -> list[LogRecord] | None:
        """``read``, called on the event loop's thread, at any time: the records if
        they can be had there without waiting (memory; a SQLite read connection),
        else None (then ``read`` is offloaded)."""
        ...

    def committed(self, group: str, topic: str) -> dict[int, int]: ...
    def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]: ...
    def end_offsets(self, topic: str) -> dict[int, int]: ...
    def close(self) -> None: ...


@dataclass(eq=False)
class _PendingWrite:
    """An append (no ``commit``) or a transaction of a group member, waiting for a batch."""

    records: list[tuple[OutRecord, int]]
    commit: OffsetCommit | None = None
    member: int = 0
    epochs: dict[int, int] | None = None
    """The partition epochs the member last saw (see :mod:`chatcore.log._groups`)."""
    durable: bool = True
    taken: bool = False
    done: anyio.Event = field(default_factory=anyio.Event)
    result: list[RecordPosition] | None = None
    error: BaseException | None = None


class EmbeddedLog(ClosingContext):
    """A :class:`~chatcore.log.PartitionedLog` over a :class:`LogStorage`.

    ``offload`` runs a storage call: directly for memory, in a worker thread for files.
    """

    def __init__(
        self,
        storage: LogStorage,
        offload: Offload,
    ) -> None:
        self._storage = storage
        self._offload = offload
        self._lock = anyio.Lock()
        self._pending: list[_PendingWrite] = []
        self._changed: dict[str, anyio.Event] = {}
        """Per topic: set (and replaced) when records or its group members change."""
        self._groups = GroupCoordinator()
        self._ends: dict[str, dict[int, int]] = {}
        """Per topic read so far: each partition's end offset. This log is the file's
        only writer (one process), so it knows them without asking the storage."""
        self._meta: dict[str, TopicMeta] | None = None
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        async with self._lock:
            await self._offload(self._storage.close)
        self._notify(*self._changed)

    # -- topics -----------------------------------------------------------------

    async def _topics(self) -> dict[str, TopicMeta]:
        if self._meta is None:
            self._meta = await self._run(self._storage.topics)
        return self._meta

    async def _topic(self, topic: str) -> TopicMeta:
        meta = (await self._topics()).get(topic)
        if meta is None:
            raise NotFound(f"no topic {topic!r}; create it with create_topic()")
        return meta

    async def create_topic(self, topic: str, *, partitions: int, compacted: bool = False) -> None:
        if partitions < 1:
            raise InvalidRequest(f"a topic needs at least one partition, got {partitions}")
        existing = (await self._topics()).get(topic)
        if existing is not None:
            if existing.partitions != partitions:
                raise InvalidRequest(
                    f"topic {topic!r} exists with {existing.partitions} partitions, "
                    f"not {partitions}"
                )
            return
        meta = TopicMeta(partitions, compacted)
        async with self._lock:
            await self._run(lambda: self._storage.create_topic(topic, meta))
        (await self._topics())[topic] = meta

    async def partition_count(self, topic: str) -> int:
        return (await self._topic(topic)).partitions

    # -- writing ----------------------------------------------------------------

    async def _placed(self, records: Sequence[OutRecord]) -> list[tuple[OutRecord, int]]:
        placed = []
        for r in records:
            n = (await self._topic(r.topic)).partitions
            p = partition_for(r.key, n) if r.partition is None else r.partition
            if not 0 <= p < n:
                raise InvalidRequest(f"topic {r.topic!r} has no partition {p}")
            placed.append((r, p))
        return placed

    async def append(self, records: Sequence[OutRecord]) -> list[RecordPosition]:
        self._check_open()
        if not records:
            return []
        return await self._submit(_PendingWrite(await self._placed(records)))

    async def _submit(self, mine: _PendingWrite) -> list[RecordPosition]:
        """Queue ``mine``; write the queue if nobody else is; wait until it is written."""
        self._pending.append(mine)
        try:
            async with self._lock:
                if not mine.taken:
                    batch, self._pending = self._pending, []
                    for pending in batch:
                        pending.taken = True
                    with anyio.CancelScope(shield=True):
                        await self._write_batch(batch)
            await mine.done.wait()
        except BaseException:
            if not mine.taken:  # cancelled while waiting for the lock: write nothing
                self._pending.remove(mine)
            elif not mine.done.is_set():  # in a batch being written: let it land first
                with anyio.CancelScope(shield=True):
                    await mine.done.wait()
            raise
        if mine.error is not None:
            raise mine.error
        assert mine.result is not None
        return mine.result

    async def _write_batch(self, batch: list[_PendingWrite]) -> None:
        live = []
        for pending in batch:
            commit = pending.commit
            if commit is not None and not self._groups.owns_all(
                commit.group, commit.topic, pending.member, set(commit.offsets), pending.epochs
            ):
                pending.error = Fenced(
                    f"member of group {commit.group!r} no longer owns {sorted(commit.offsets)}"
                )
                pending.done.set()
            else:
                live.append(pending)
        if not live:
            return
        flat = [pair for pending in live for pair in pending.records]
        commits = [pending.commit for pending in live if pending.commit is not None]
        durable = any(pending.durable for pending in live)
        try:
            positions = await self._run(
                lambda: self._storage.write(flat, wall_ms(), commits, durable=durable)
            )
        except BaseException as exc:
            for pending in live:
                pending.error = exc
                pending.done.set()
            if not isinstance(exc, Exception):
                raise
            return
        for (record, _), position in zip(flat, positions, strict=True):
            ends = self._ends.get(record.topic)
            if ends is not None:
                ends[position.partition] = max(ends.get(position.partition, 0), position.offset + 1)
        start = 0
        for pending in live:
            end = start + len(pending.records)
            pending.result = positions[start:end]
            pending.done.set()
            start = end
        if flat:
            self._notify(*{record.topic for record, _ in flat})

    async def _transact(
        self,
        member: int,
        group: str,
        topic: str,
        outputs: Sequence[OutRecord],
        offsets: Mapping[int, int],
        *,
        durable: bool = True,
        epochs: Mapping[int, int] | None = None,
    ) -> list[RecordPosition]:
        self._check_open()
        placed = await self._placed(outputs)
        commit = OffsetCommit(group, topic, dict(offsets))
        seen = None if epochs is None else dict(epochs)
        return await self._submit(
            _PendingWrite(placed, commit, member, seen, durable or bool(placed))
        )

    # -- reading ----------------------------------------------------------------

    def consumer(self, topic: str, *, group: str) -> EmbeddedConsumer:
        return EmbeddedConsumer(self, topic, group)

    async def read_compacted(self, topic: str, partition: int) -> dict[str, bytes]:
        meta = await self._topic(topic)
        if not meta.compacted:
            raise InvalidRequest(f"topic {topic!r} is not compacted")
        return await self._run(lambda: self._storage.read_compacted(topic, partition))

    async def end_offsets(self, topic: str) -> dict[int, int]:
        await self._topic(topic)
        return await self._run(lambda: self._storage.end_offsets(topic))

    async def committed(self, topic: str, *, group: str) -> dict[int, int]:
        meta = await self._topic(topic)
        stored = await self._run(lambda: self._storage.committed(group, topic))
        return {p: stored.get(p, 0) for p in range(meta.partitions)}

    async def backlog(
        self, topic: str, *, group: str, ends: Mapping[int, int] | None = None
    ) -> dict[int, int]:
        if ends is None:
            ends = await self.end_offsets(topic)
        done = await self.committed(topic, group=group)
        return {p: max(ends.get(p, 0) - offset, 0) for p, offset in done.items()}

    async def _partition_ends(self, topic: str) -> dict[int, int]:
        """Each partition's end offset, kept current by every write after the first
        call (which reads them under the write lock: no write lands in between)."""
        ends = self._ends.get(topic)
        if ends is None:
            async with self._lock:
                ends = self._ends.get(topic)
                if ends is None:
                    ends = await self._run(lambda: self._storage.end_offsets(topic))
                    self._ends[topic] = ends
        return ends

    async def _read(self, topic: str, positions: Mapping[int, int], limit: int) -> list[LogRecord]:
        self._check_open()
        with _storage_errors():
            records = self._storage.read_now(topic, positions, limit)
        if records is None:
            records = await self._run(lambda: self._storage.read(topic, positions, limit))
        return records

    # -- internals --------------------------------------------------------------

    def _notify(self, *topics: str) -> None:
        """Wake the consumers of ``topics`` (only theirs: an append to one topic
        does not make every stage of the pipeline poll)."""
        for topic in topics:
            changed = self._changed.pop(topic, None)
            if changed is not None:
                changed.set()

    def _changes(self, topic: str) -> anyio.Event:
        """The event the next change of ``topic`` sets."""
        changed = self._changed.get(topic)
        if changed is None:
            changed = self._changed[topic] = anyio.Event()
        return changed

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("the log is closed")

    async def _run(self, fn: Callable[[], T]) -> T:
        self._check_open()
        with _storage_errors():
            return await self._offload(fn)


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """A storage call's failure as Unavailable (chatcore's own errors as they are)."""
    try:
        yield
    except (ChatcoreClosed, InvalidRequest, NotFound):
        raise
    except Exception as exc:
        raise Unavailable(f"log storage failed: {exc}") from exc


class EmbeddedConsumer(ClosingContext):
    """A consumer-group member of an :class:`EmbeddedLog`."""

    def __init__(self, log: EmbeddedLog, topic: str, group: str) -> None:
        self._log = log
        self._topic = topic
        self._group = group
        self._member: int | None = None
        self._owned: frozenset[int] = frozenset()
        self._epochs: dict[int, int] = {}  # partition -> its epoch when last seen owned
        self._positions: dict[int, int] = {}
        self._generation = -1  # of the group when this member last looked at it
        self._next_partition = 0

    async def __aenter__(self) -> Self:
        meta = await self._log._topic(self._topic)
        if meta.compacted:
            raise InvalidRequest(f"topic {self._topic!r} is compacted: use read_compacted()")
        self._member = self._log._groups.join(self._group, self._topic, meta.partitions)
        self._log._notify(self._topic)
        return self

    async def aclose(self) -> None:
        if self._member is not None:
            self._log._groups.leave(self._group, self._topic, self._member)
            self._member = None
            self._log._notify(self._topic)

    @property
    def assignment(self) -> frozenset[int]:
        return self._owned

    def _joined(self) -> int:
        if self._member is None:
            raise ChatcoreClosed("consumer is not in its group (use it with `async with`)")
        return self._member

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        member = self._joined()
        # What is there already is taken without a timeout's cancel scope (most polls
        # under load); the scope only wraps the wait for more.
        batch = await self._poll_once(member, max_records)
        if batch is not None:
            return batch
        with anyio.move_on_after(timeout_s):
            while True:
                changed = self._log._changes(self._topic)  # before reading: no write missed
                batch = await self._poll_once(member, max_records)
                if batch is not None:
                    return batch
                await changed.wait()
        return ConsumerBatch([])

    async def _poll_once(self, member: int, max_records: int) -> ConsumerBatch | None:
        """The records there are now and any assignment change; None if neither."""
        log = self._log
        assigned: frozenset[int] = frozenset()
        revoked: frozenset[int] = frozenset()
        generation = log._groups.generation(self._group, self._topic)
        if generation != self._generation:
            self._generation = generation
            held = log._groups.held(self._group, self._topic, member)
            # A partition lost and owned again since the last poll is both revoked
            # and assigned: whatever this member held for it is stale.
            assigned = frozenset(p for p, e in held.items() if self._epochs.get(p) != e)
            revoked = frozenset(p for p in self._epochs if held.get(p) != self._epochs[p])
            for p in revoked:
                self._positions.pop(p, None)
            self._epochs = held
            self._owned = frozenset(held)
            if assigned:
                committed = await log._run(lambda: log._storage.committed(self._group, self._topic))
                for p in assigned:
                    self._positions[p] = committed.get(p, 0)
        records = await self._read(max_records)
        if records or assigned or revoked:
            return ConsumerBatch(records, assigned, revoked)
        return None

    async def _read(self, limit: int) -> list[LogRecord]:
        if not self._positions:
            return []
        ends = await self._log._partition_ends(self._topic)
        owned = sorted(self._positions)
        start = self._next_partition % len(owned)
        self._next_partition += 1
        # Only the partitions with records past this member's position.
        positions = {
            p: self._positions[p]
            for p in owned[start:] + owned[:start]
            if self._positions[p] < ends.get(p, 0)
        }
        if not positions:
            return []
        records = await self._log._read(self._topic, positions, limit)
        for r in records:
            self._positions[r.partition] = r.offset + 1
        return records

    async def commit(self, offsets: Mapping[int, int]) -> None:
        # Not durable on its own: the embedded log's consumers are idempotent stages,
        # and an offset commit lost to a power failure replays records (see module doc).
        await self._log._transact(
            self._joined(),
            self._group,
            self._topic,
            (),
            offsets,
            durable=False,
            epochs=self._epochs,
        )

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        return await self._log._transact(
            self._joined(), self._group, self._topic, outputs, offsets, epochs=self._epochs
        )
