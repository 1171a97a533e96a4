"""A member of a Kafka consumer group: joins, rebalances, polls, commits.

How this works: see :mod:`chatcore.log.kafka`. The member owns a transactional
producer per assigned partition (started on assignment, which fences the previous
owner's), and :mod:`chatcore.log._kafka_transactions` runs its transactions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, Fenced, InvalidRequest, Unavailable
from chatcore.log._base import ConsumerBatch, LogRecord, OutRecord, RecordPosition
from chatcore.log._kafka_client import (
    ConsumerRebalanceListener,
    TopicPartition,
    forget_transaction_error,
    kafka_errors,
    logger,
    mapped,
    stop_quietly,
)
from chatcore.log._kafka_cluster import KafkaCluster
from chatcore.log._kafka_transactions import plan_transactions, run_transactions

__all__ = ["KafkaLogConsumer"]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    """Forwards aiokafka's rebalance callbacks to the member."""

    def __init__(self, member: KafkaLogConsumer, consumer: Any) -> None:
        self._member = member
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self._member._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        await self._member._on_assigned(self._consumer, assigned)


def _generation_of(consumer: Any) -> int | None:
    """The group generation the member last joined (aiokafka keeps it private)."""
    generation = getattr(getattr(consumer, "_coordinator", None), "generation", None)
    return generation if isinstance(generation, int) and generation > 0 else None


class KafkaLogConsumer(ClosingContext):
    """A member of a Kafka consumer group on one topic of a :class:`~chatcore.log.kafka.KafkaLog`.

    ``__aenter__`` returns once the member has joined and holds its first
    assignment; ``aclose`` leaves the group and waits (at most the shorter of
    ``session_timeout_ms`` and ``rebalance_timeout_ms``) until the group has
    settled without it.
    """

    def __init__(self, cluster: KafkaCluster, topic: str, group: str) -> None:
        self._cluster = cluster
        self._topic = topic
        self._group = group
        self._group_id = cluster.group_id(group)
        self._consumer: Any = None
        self._producers: dict[int, Any] = {}
        self._current: frozenset[int] = frozenset()  # assigned as of the last rebalance
        self._visible: frozenset[int] = frozenset()  # as the caller knows it (last poll)
        self._owned: set[int] = set()  # may be committed now
        self._suspended: set[int] = set()  # owned when the rebalance in progress began
        self._fresh: set[int] = set()  # (re)started since the last poll: caller restores
        self._lost: set[int] = set()  # producer fenced or broken: no more writes
        self._positions: dict[int, int] = {}  # next offset to hand out, per partition
        self._generation: int | None = None
        self._rounds = 0  # rebalances completed
        self._rebalancing = False
        self._settled = anyio.Event()
        self._write_lock = anyio.Lock()
        self._failure: Exception | None = None

    async def __aenter__(self) -> Self:
        """Join the group; returns once this member holds its first assignment.

        Raises :class:`~chatcore.errors.NotFound` for a missing topic,
        :class:`~chatcore.errors.InvalidRequest` for a compacted one or a member
        already in its group, :class:`~chatcore.errors.Unavailable` if joining fails.
        """
        if self._consumer is not None:
            raise InvalidRequest("this consumer is already in its group")
        cluster = self._cluster
        meta = await cluster.topic(self._topic)
        if meta.compacted:
            raise InvalidRequest(f"topic {self._topic!r} is compacted: use read_compacted()")
        consumer = cluster.clients.group_member(self._group_id)
        consumer.subscribe([self._topic], listener=_Rebalance(self, consumer))
        self._consumer = consumer
        cluster.track(self._abandon)
        try:
            await cluster.clients.start(consumer)
            await self._wait_settled()
        except BaseException:
            await self._abandon()
            raise
        return self

    async def aclose(self) -> None:
        """Leave the group and wait until its partitions have moved. Idempotent."""
        await self._close(handoff=True)

    async def _abandon(self) -> None:
        """Leave without waiting for the group to settle (the log is closing)."""
        await self._close(handoff=False)

    async def _close(self, *, handoff: bool) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        cluster = self._cluster
        cluster.untrack(self._abandon)
        await stop_quietly(consumer, cluster.timeout_s)  # sends LeaveGroup
        producers, self._producers = self._producers, {}
        for producer in producers.values():
            await stop_quietly(producer, cluster.timeout_s)
        self._owned.clear()
        self._notify_settled()
        if handoff and not cluster.closed:
            with anyio.CancelScope(shield=True):
                await cluster.await_handoff(self._group_id)

    @property
    def assignment(self) -> frozenset[int]:
        """The partitions this member owns as of its last poll."""
        return self._visible

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> ConsumerBatch:
        """Return the next records of owned partitions, waiting up to ``timeout_s`` for some.

        A rebalance in progress is waited for first (the member owns nothing
        meanwhile), up to ``rebalance_timeout_ms``. Raises
        :class:`~chatcore.errors.Unavailable` when the cluster is down or the member
        could not take over a partition, :class:`~chatcore.errors.ChatcoreClosed`
        outside ``async with``.
        """
        if max_records < 1:
            raise InvalidRequest("max_records must be at least 1")
        consumer = self._joined()
        await self._wait_settled()
        changed = self._current != self._visible or bool(self._fresh)
        with mapped(f"poll {self._topic!r}"):
            batches = await consumer.getmany(
                timeout_ms=0 if changed else int(timeout_s * 1000), max_records=max_records
            )
        # Records come from the assignment in force when they were drained, so a
        # rebalance that began while we waited left nothing to drop.
        await self._wait_settled()
        assigned, revoked = self._take_changes()
        records: list[LogRecord] = []
        for tp, messages in batches.items():
            if not messages or tp.partition not in self._visible:
                continue
            records.extend(
                LogRecord(
                    tp.topic,
                    tp.partition,
                    m.offset,
                    m.key.decode() if m.key is not None else "",
                    m.value if m.value is not None else b"",
                    m.timestamp,
                )
                for m in messages
            )
            self._positions[tp.partition] = int(messages[-1].offset) + 1
        return ConsumerBatch(records, assigned, revoked)

    async def commit(self, offsets: Mapping[int, int]) -> None:
        """Commit, per partition, the offset of the next record to read.

        Raises :class:`~chatcore.errors.Fenced` if a partition is no longer owned,
        :class:`~chatcore.errors.Unavailable` on cluster failure.
        """
        consumer = self._joined()
        if not offsets:
            return
        commit = {TopicPartition(self._topic, p): o for p, o in offsets.items()}
        async with self._writable(set(offsets)):
            with (
                mapped(f"commit offsets of {self._group!r}"),
                anyio.fail_after(self._cluster.timeout_s),
            ):
                try:
                    await consumer.commit(commit)
                except kafka_errors.IllegalStateError as exc:  # not assigned any more
                    raise Fenced(f"member of {self._group!r} lost {sorted(offsets)}") from exc
        self._cluster.committed_directly(self._group_id, self._topic, offsets)

    async def commit_transaction(
        self, outputs: Sequence[OutRecord], offsets: Mapping[int, int]
    ) -> list[RecordPosition]:
        """Append ``outputs`` and commit ``offsets``: one Kafka transaction per input partition.

        Each input partition's transaction holds its offset and its outputs; all are
        committed only if all prepared. Raises :class:`~chatcore.errors.Fenced` if a
        partition is no longer owned (nothing is written),
        :class:`~chatcore.errors.Unavailable` on cluster failure (a failure between
        two partitions' commits can leave one committed), and
        :class:`~chatcore.errors.NotFound` / :class:`~chatcore.errors.InvalidRequest`
        for bad outputs.
        """
        self._joined()
        placed = await self._cluster.placed(outputs)
        if not placed and not offsets:
            return []
        async with self._writable(set(offsets)):
            inputs = sorted(offsets) or sorted(self._owned)[:1]
            if not inputs:
                raise Fenced(f"member of {self._group!r} owns no partition to write with")
            plan = plan_transactions(placed, offsets, inputs)
            with anyio.CancelScope(shield=True):  # a torn transaction would wedge its producer
                outcome = await run_transactions(
                    self._producers,
                    plan,
                    topic=self._topic,
                    group_id=self._group_id,
                    timeout_s=self._cluster.timeout_s,
                )
                committed = outcome.committed
                self._cluster.committed_by_transaction(self._group_id, self._topic, committed)
                for p in outcome.lost:
                    await self._lose(p)
            outcome.raise_failure(self._topic)
        return plan.positions(outcome.results)

    async def _lose(self, partition: int) -> None:
        """Stop writing for ``partition`` until it is assigned afresh."""
        self._owned.discard(partition)
        self._lost.add(partition)
        producer = self._producers.pop(partition, None)
        if producer is not None:
            forget_transaction_error(producer)
            await stop_quietly(producer, self._cluster.timeout_s)

    # -- group membership -----------------------------------------------------------

    def _joined(self) -> Any:
        self._cluster.check_open()
        if self._consumer is None:
            raise ChatcoreClosed("consumer is not in its group (use it with `async with`)")
        return self._consumer

    @asynccontextmanager
    async def _writable(self, partitions: set[int]) -> AsyncIterator[None]:
        """Hold the write lock while this member owns ``partitions``; else raise Fenced."""
        while True:
            await self._wait_settled()
            async with self._write_lock:
                if self._rebalancing:
                    continue  # one began while we waited for the lock
                lost = partitions - self._owned
                if lost:
                    raise Fenced(f"member of {self._group!r} no longer owns {sorted(lost)}")
                yield
                return

    async def _wait_settled(self) -> None:
        """Wait for the first assignment and for any rebalance in progress."""
        with mapped(f"rebalance of {self._group!r}"):
            with anyio.fail_after(self._cluster.rebalance_timeout_s + self._cluster.timeout_s):
                while self._consumer is not None and (self._rebalancing or not self._rounds):
                    await self._settled.wait()
        if self._failure is not None:
            raise Unavailable(
                f"kafka: member of {self._group!r} could not take over its partitions: "
                f"{self._failure!r}"
            ) from self._failure
        self._joined()

    def _notify_settled(self) -> None:
        self._settled.set()
        self._settled = anyio.Event()

    def _take_changes(self) -> tuple[frozenset[int], frozenset[int]]:
        now, before, fresh = self._current, self._visible, self._fresh
        assigned = (now - before) | (fresh & now)
        revoked = (before - now) | (fresh & before)
        self._visible, self._fresh = now, set()
        self._owned = set(now) - self._lost
        return frozenset(assigned), frozenset(revoked)

    async def _on_revoked(self, revoked: set[Any]) -> None:
        self._rebalancing = True
        async with self._write_lock:  # an in-flight transaction or commit ends first
            gone = {tp.partition for tp in revoked if tp.topic == self._topic}
            self._suspended |= self._owned & gone
            self._owned -= gone

    async def _on_assigned(self, consumer: Any, assigned: set[Any]) -> None:
        tps = [tp for tp in assigned if tp.topic == self._topic]
        consumer.pause(*tps)  # nothing is fetched before its position is settled below
        try:
            mine = frozenset(tp.partition for tp in tps)
            generation = _generation_of(consumer)
            consecutive = (
                generation is not None
                and self._generation is not None
                and generation == self._generation + 1
            )
            kept = (
                {p for p in mine & self._current if p in self._producers} if consecutive else set()
            )
            fresh = mine - kept
            for p in [p for p in self._producers if p not in kept]:
                await stop_quietly(self._producers.pop(p), self._cluster.timeout_s)
            await self._start_producers(fresh)  # fences the previous owners' producers
            committed = await self._cluster.group_offsets(self._group_id, self._topic, fresh)
            self._positions = {p: self._positions[p] for p in kept} | committed
            for tp in tps:
                consumer.seek(tp, self._positions[tp.partition])
            self._lost -= fresh
            self._fresh |= fresh
            self._owned |= self._suspended & kept
            self._current = mine
            self._generation = generation
        except Exception as exc:
            logger.warning("member of %r failed to take %s", self._group_id, tps, exc_info=True)
            self._failure = exc
        finally:
            self._suspended = set()
            consumer.resume(*tps)
            self._rebalancing = False
            self._rounds += 1
            self._notify_settled()

    async def _start_producers(self, partitions: Iterable[int]) -> None:
        clients = self._cluster.clients
        failures: list[Exception] = []

        async def start(p: int) -> None:
            try:
                txid = self._cluster.transactional_id(self._group, self._topic, p)
                self._producers[p] = await clients.start(clients.transactional_producer(txid))
            except Exception as exc:
                failures.append(exc)

        async with anyio.create_task_group() as tg:
            for p in partitions:
                tg.start_soon(start, p)
        if failures:
            raise failures[0]
