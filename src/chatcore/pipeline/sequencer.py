"""The Sequencer: the single writer of each partition, deciding order and duplicates.

How it works. The Sequencer is a consumer-group member on ``chat.submitted``. For
each partition it owns it keeps a :class:`PartitionState`: the last seq of every
chat and a window of recent ``(chat, sender, client_msg_id)`` keys. A submitted
message whose key is in the window is a retry and is dropped; any other gets the
chat's next seq. Per polled batch it then does ONE log transaction that

* appends the sequenced messages to ``chat.messages`` (same partition number),
* appends the state changes to the compacted ``chat.sequencer`` changelog, and
* commits the consumed offsets of ``chat.submitted``.

A crash before the transaction loses nothing (the batch is consumed again from the
committed offset, and the state is restored from the changelog as of that offset);
a crash after it repeats nothing. A Sequencer that lost its partition to another is
fenced by the log and cannot write. So seq is contiguous and every message is
sequenced exactly once, whatever dies when.

``run`` overlaps each transaction with polling and sequencing the next batch, and
keeps polling while the transaction is in flight: every record that arrives before it
is done joins the next transaction (up to ``max_batch``), so a record waits for at most
the transaction in flight and its own, not for one more. The transactions themselves
still run one at a time, in poll order; a batch that brings an assignment change waits
until everything sequenced before it is committed before it restores any state; and if
either side fails, the in-memory states (which ran ahead) are dropped and the error is
raised, so the restarted Sequencer resumes from what was committed.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import anyio
import msgspec
from anyio.abc import TaskStatus

from chatcore._clock import wall_ms
from chatcore._gather import both
from chatcore.log import ConsumerBatch, LogConsumer, OutRecord, PartitionedLog
from chatcore.model import EVENT_KINDS, StoredMessage
from chatcore.pipeline.records import (
    DEFAULT_TOPICS,
    Submitted,
    Topics,
    TracedMessage,
    decode_submitted,
    encode,
)
from chatcore.pipeline.stages import SEQUENCER
from chatcore.telemetry import NO_TELEMETRY, Telemetry
from chatcore.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ["DedupeKey", "PartitionState", "Sequencer", "SequencerStats"]

log = logging.getLogger(__name__)

TOP_UP_POLL_S = 0.002
"""How long a poll waits for more records while a transaction is in flight: the most
the next transaction may start after the commit it waits for is done."""

DedupeKey = tuple[str, str, str]  # chat_id, sender, client_msg_id


class _Seen(NamedTuple):
    seq: int
    message_id: int
    at_ms: int


_key_encoder = msgspec.json.Encoder()
_seen_decoder = msgspec.msgpack.Decoder(tuple[int, int, int])


def _last_key(chat_id: str) -> str:
    return _key_encoder.encode(("s", chat_id)).decode()


def _dedupe_key(key: DedupeKey) -> str:
    return _key_encoder.encode(("d", *key)).decode()


class PartitionState:
    """Pure state of one partition: last seq per chat and the dedupe window.

    Every change is also recorded as a changelog entry (key, value; empty value =
    delete) that :meth:`take_changes` hands out for the next transaction.
    """

    def __init__(self, *, window_ms: int, max_entries: int) -> None:
        self.window_ms = window_ms
        self.max_entries = max_entries
        self.last_seq: dict[str, int] = {}
        self.counted: dict[str, int] = {}
        """Messages (events not counted) per chat; a chat sequenced before events
        existed starts at its last seq (all its seqs were messages)."""
        self.seen: OrderedDict[DedupeKey, _Seen] = OrderedDict()
        self._changes: dict[str, bytes] = {}

    @classmethod
    def restore(
        cls, snapshot: dict[str, bytes], *, now_ms: int, window_ms: int, max_entries: int
    ) -> PartitionState:
        """Rebuild from the compacted changelog; expired entries are deleted on next commit."""
        state = cls(window_ms=window_ms, max_entries=max_entries)
        seen: list[tuple[DedupeKey, _Seen]] = []
        for key, value in snapshot.items():
            kind, *rest = msgspec.json.decode(key, type=list[str])
            if kind == "s":
                seq, _, counted = value.decode().partition("/")
                state.last_seq[rest[0]] = int(seq)
                state.counted[rest[0]] = int(counted or seq)
            else:
                seen.append(((rest[0], rest[1], rest[2]), _Seen(*_seen_decoder.decode(value))))
        seen.sort(key=lambda item: item[1].at_ms)
        state.seen.update(seen)
        state.expire(now_ms)
        return state

    def admit(self, sub: Submitted, *, now_ms: int) -> StoredMessage | None:
        """The sequenced message, or None when ``sub`` is a retry of one in the window."""
        key = (sub.chat_id, sub.sender, sub.client_msg_id)
        if key in self.seen:
            return None
        seq = self.last_seq.get(sub.chat_id, 0) + 1
        counted = self.counted.get(sub.chat_id, seq - 1) + (sub.kind not in EVENT_KINDS)
        self.last_seq[sub.chat_id] = seq
        self.counted[sub.chat_id] = counted
        value = str(seq) if counted == seq else f"{seq}/{counted}"
        self._changes[_last_key(sub.chat_id)] = value.encode()
        entry = _Seen(seq, sub.message_id, now_ms)
        self.seen[key] = entry
        self._changes[_dedupe_key(key)] = msgspec.msgpack.encode(tuple(entry))
        self.expire(now_ms)
        return sub.sequenced(seq, counted)

    def expire(self, now_ms: int) -> None:
        """Forget dedupe keys older than the window or beyond ``max_entries``."""
        horizon = now_ms - self.window_ms
        while self.seen:
            key, entry = next(iter(self.seen.items()))
            if entry.at_ms >= horizon and len(self.seen) <= self.max_entries:
                break
            del self.seen[key]
            self._changes[_dedupe_key(key)] = b""

    def take_changes(self) -> list[tuple[str, bytes]]:
        changes, self._changes = list(self._changes.items()), {}
        return changes


class _Sequenced(NamedTuple):
    """A batch admitted into the partition states, waiting for its transaction."""

    outputs: list[OutRecord]
    offsets: dict[int, int]
    accepted_ms: list[int]
    accepted_in: list[int]  # the input partition of each accepted message (and span)
    dupes: int
    spans: list[Span]


def _end_spans(spans: list[Span], exc: BaseException | None = None) -> None:
    for span in spans:
        if exc is not None:
            span.record_exception(exc)
        span.end()


def _merged(parts: list[_Sequenced]) -> _Sequenced | None:
    """Batches sequenced one after the other as one transaction's batch (in order)."""
    if len(parts) <= 1:
        return parts[0] if parts else None
    return _Sequenced(
        [o for part in parts for o in part.outputs],
        {p: offset for part in parts for p, offset in part.offsets.items()},
        [ms for part in parts for ms in part.accepted_ms],
        [p for part in parts for p in part.accepted_in],
        sum(part.dupes for part in parts),
        [span for part in parts for span in part.spans],
    )


def _without(batch: _Sequenced, partitions: frozenset[int]) -> _Sequenced | None:
    """``batch`` without what it holds of ``partitions`` (None if nothing is left); the
    spans of what is dropped are ended."""
    if not partitions & batch.offsets.keys():
        return batch
    keep = [p not in partitions for p in batch.accepted_in]
    _end_spans([s for s, k in zip(batch.spans, keep, strict=False) if not k])
    offsets = {p: o for p, o in batch.offsets.items() if p not in partitions}
    if not offsets:
        return None
    return _Sequenced(
        [o for o in batch.outputs if o.partition not in partitions],
        offsets,
        [ms for ms, k in zip(batch.accepted_ms, keep, strict=True) if k],
        [p for p, k in zip(batch.accepted_in, keep, strict=True) if k],
        batch.dupes,
        [s for s, k in zip(batch.spans, keep, strict=False) if k],
    )


class SequencerStats(NamedTuple):
    sequenced: int
    duplicates: int
    transactions: int


class Sequencer:
    """Runs the sequencing loop for the partitions this process owns."""

    def __init__(
        self,
        log: PartitionedLog,
        *,
        topics: Topics = DEFAULT_TOPICS,
        group: str = SEQUENCER.group,
        dedupe_window_ms: int = 24 * 3600 * 1000,
        dedupe_max_entries: int = 1_000_000,
        max_batch: int = 500,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
        tracing: Tracing | None = None,
    ) -> None:
        """``dedupe_window_ms``/``dedupe_max_entries``: how long and how many retries are
        recognised per partition (24 h, one million by default)."""
        self._log = log
        self._topics = topics
        self._group = group
        self._window_ms = dedupe_window_ms
        self._max_entries = dedupe_max_entries
        self._max_batch = max_batch
        self._clock = clock
        self._telemetry = telemetry
        self._tracing = tracing
        self._sequenced = 0
        self._duplicates = 0
        self._transactions = 0
        self._states: dict[int, PartitionState] = {}

    @property
    def stats(self) -> SequencerStats:
        return SequencerStats(self._sequenced, self._duplicates, self._transactions)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sequence until cancelled; raises on a failed transaction (restart it).

        Pipelined: while one batch's transaction is in flight, the next batch is
        polled and sequenced (see :meth:`_pipeline`).
        """
        self._states.clear()
        async with self._log.consumer(self._topics.submitted, group=self._group) as consumer:
            task_status.started()
            try:
                await self._pipeline(consumer)
            except BaseException:
                self._states.clear()  # states may have run ahead of what was committed
                raise

    async def _pipeline(self, consumer: LogConsumer) -> None:
        """Poll and sequence what comes next while batch N's transaction is in flight.

        Order and exactly-once hold as in :meth:`handle`: transactions are still
        committed one at a time, in poll order, so a chat's seqs reach the log in
        order; a batch that brings an assignment change is sequenced only once all
        that was sequenced before it is committed. If either side fails, both are
        abandoned and the error is raised (the caller restarts from the committed
        offsets).
        """
        pending = await self._sequence(await self._poll(consumer))
        while True:
            if pending is None:
                pending = await self._sequence(await self._poll(consumer))
                continue
            pending, change = await self._commit_and_sequence_next(consumer, pending)
            if change is not None:  # polled behind records still to commit
                # What they hold of a partition this member lost (or lost and got back,
                # its state to be restored from the log) was sequenced on a state that
                # may be stale: drop it; the partition's owner reads it again from
                # the committed offset.
                if pending is not None:
                    pending = _without(pending, change.revoked)
                if pending is not None:
                    await self._commit(consumer, pending)
                pending = await self._sequence(change)

    async def _commit_and_sequence_next(
        self, consumer: LogConsumer, current: _Sequenced
    ) -> tuple[_Sequenced | None, ConsumerBatch | None]:
        """Commit ``current`` while what comes next is polled and sequenced.

        Returns the next transaction's batch: the records polled until ``current`` was
        committed (at most ``max_batch``), merged. And a polled batch that brings an
        assignment change behind them, not sequenced yet: it may restore states only
        once they are committed too.
        """
        committed = anyio.Event()
        ahead: list[_Sequenced] = []
        change: list[ConsumerBatch] = []

        async def commit() -> None:
            try:
                await self._commit(consumer, current)
            finally:
                committed.set()

        async def sequence_next() -> None:
            room = self._max_batch
            while room > 0 and not (ahead and committed.is_set()):
                # The first poll waits for records as long as ever; the later ones
                # only briefly, to be back soon after the commit is done.
                timeout_s = TOP_UP_POLL_S if ahead else 1.0
                batch = await consumer.poll(max_records=room, timeout_s=timeout_s)
                if batch.assigned or batch.revoked:
                    if ahead:
                        change.append(batch)
                        return
                    await committed.wait()  # restore states only from what is committed
                sequenced = await self._sequence(batch)
                if sequenced is not None:
                    ahead.append(sequenced)
                    room -= len(batch.records)
                elif not ahead:
                    return  # nothing came within a poll's wait

        try:
            await both(commit, sequence_next)
        except BaseException as exc:
            for abandoned in ahead:  # never to be committed by this run
                _end_spans(abandoned.spans, exc)
            raise
        return _merged(ahead), (change[0] if change else None)

    async def _poll(self, consumer: LogConsumer) -> ConsumerBatch:
        return await consumer.poll(max_records=self._max_batch)

    async def handle(self, consumer: LogConsumer, batch: ConsumerBatch) -> None:
        """Sequence one polled batch in one transaction.

        If this raises, the consumer's position has run ahead of what was committed:
        close it and start a new one (``run`` does so by raising to its supervisor).
        """
        sequenced = await self._sequence(batch)
        if sequenced is not None:
            await self._commit(consumer, sequenced)

    async def _sequence(self, batch: ConsumerBatch) -> _Sequenced | None:
        """Admit ``batch`` into the partition states: what its transaction must write
        (None if it has no records)."""
        states = self._states
        for p in batch.revoked:
            states.pop(p, None)
        for p in batch.assigned:
            states[p] = await self._restore(p)
        if not batch.records:
            return None
        topics = self._topics
        outputs: list[OutRecord] = []
        offsets: dict[int, int] = {}
        now = self._clock()
        dupes = 0
        accepted_ms: list[int] = []
        accepted_in: list[int] = []
        spans: list[Span] = []
        for record in batch.records:
            p = record.partition
            if p not in states:
                states[p] = await self._restore(p)
            offsets[p] = record.offset + 1
            try:
                sub = decode_submitted(record.value)
            except msgspec.DecodeError:
                log.error("skipping undecodable record %s/%s", p, record.offset)
                continue
            message = states[p].admit(sub, now_ms=now)
            if message is None:
                dupes += 1
                continue
            accepted_ms.append(message.ts)
            accepted_in.append(p)
            value = encode(message) if self._tracing is None else self._traced(sub, message, spans)
            outputs.append(OutRecord(topics.messages, sub.chat_id, value, p))
        for p in offsets:
            outputs.extend(
                OutRecord(topics.sequencer_state, key, value, p)
                for key, value in states[p].take_changes()
            )
        return _Sequenced(outputs, offsets, accepted_ms, accepted_in, dupes, spans)

    async def _commit(self, consumer: LogConsumer, batch: _Sequenced) -> None:
        """Write a sequenced batch and commit its offsets in one transaction."""
        try:
            await consumer.commit_transaction(batch.outputs, batch.offsets)
        except BaseException as exc:
            for p in batch.offsets:  # in-memory state ran ahead: rebuild it from the log
                self._states.pop(p, None)
            _end_spans(batch.spans, exc)
            raise
        _end_spans(batch.spans)
        self._transactions += 1
        self._duplicates += batch.dupes
        self._sequenced += len(batch.accepted_ms)
        self._telemetry.stage_done("sequenced", batch.accepted_ms, self._clock())

    def _traced(self, sub: Submitted, message: StoredMessage, spans: list[Span]) -> bytes:
        """``message`` encoded with the context of a new ``chatcore.sequence`` span."""
        assert self._tracing is not None
        span = self._tracing.start(
            "chatcore.sequence",
            sub.trace,
            {"chatcore.chat": message.chat_id, "chatcore.seq": message.seq},
        )
        spans.append(span)
        fields = msgspec.structs.asdict(message)
        return encode(TracedMessage(**fields, trace=self._tracing.traceparent(span)))

    async def _restore(self, partition: int) -> PartitionState:
        snapshot = await self._log.read_compacted(self._topics.sequencer_state, partition)
        return PartitionState.restore(
            snapshot,
            now_ms=self._clock(),
            window_ms=self._window_ms,
            max_entries=self._max_entries,
        )
