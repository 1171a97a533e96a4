"""Workers downstream of the Sequencer: history, delivery and receipts.

Each is a consumer group on a log topic that handles a polled batch, then commits
its offsets. Handling is idempotent by ``(chat, seq)`` (or by watermark), so after a
crash between handling and commit the batch is simply handled again.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
import msgspec
from anyio.abc import TaskStatus

from chatcore._clock import wall_ms
from chatcore._gather import both, concurrently
from chatcore.bus._base import GatewayBus
from chatcore.cache._base import HotCache
from chatcore.cache._rules import check_per_chat
from chatcore.events import (
    Envelope,
    Event,
    MessageEvent,
    ReceiptEvent,
    encode_envelope,
    join_envelopes,
)
from chatcore.fanout import Fanout, FanoutPlanner
from chatcore.log import LogRecord, PartitionedLog
from chatcore.model import StoredMessage, Watermarks
from chatcore.offline._base import OfflineIndex, PushNotifier
from chatcore.offline.coalesce import PushCoalescer
from chatcore.pipeline.lifecycle import applied
from chatcore.pipeline.records import (
    DEFAULT_TOPICS,
    ReceiptSubmitted,
    Topics,
    TracedMessage,
    decode_message,
    decode_receipt,
    decode_traced_message,
)
from chatcore.pipeline.stages import DELIVERY, HISTORY, RECEIPTS
from chatcore.registry._base import ConnectionRegistry
from chatcore.store._base import MembershipStore, MessageStore, ReceiptStore
from chatcore.telemetry import NO_TELEMETRY, GapDetector, Telemetry, Timer
from chatcore.telemetry.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "DeliveryWorker",
    "HistoryWorker",
    "ReceiptWorker",
    "consume",
    "envelope_bytes",
]

logger = logging.getLogger(__name__)

OFFLINE_CONCURRENCY = 32
"""How many offline-index writes of one polled batch the DeliveryWorker runs at once."""

T = TypeVar("T")


async def consume(
    log: PartitionedLog,
    topic: str,
    group: str,
    decode: Callable[[bytes], T],
    handle: Callable[[list[T]], Awaitable[None]],
    *,
    max_batch: int = 500,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Poll ``topic`` as a member of ``group``, handle each batch, then commit it.

    A batch's offset commit is in flight while the next batch is polled and handled
    (handling is idempotent: a crash before the commit only hands the batch over
    again); commits are still made one at a time, in order.
    """
    async with log.consumer(topic, group=group) as consumer:
        task_status.started()
        # One long-lived task commits (a task per batch costs more than a batch of
        # one record): the next batch is handed over once the one before is committed.
        to_commit, committing = anyio.create_memory_object_stream[dict[int, int]]()

        async def commit_in_order() -> None:
            async for offsets in committing:
                await consumer.commit(offsets)

        async def handle_batches() -> None:
            while True:
                batch = await consumer.poll(max_records=max_batch)
                if not batch.records:
                    continue
                await handle(_decoded(batch.records, decode))
                offsets: dict[int, int] = {}
                for record in batch.records:
                    offsets[record.partition] = record.offset + 1
                await to_commit.send(offsets)

        with to_commit, committing:
            await both(commit_in_order, handle_batches)


def _decoded(records: list[LogRecord], decode: Callable[[bytes], T]) -> list[T]:
    out = []
    for record in records:
        try:
            out.append(decode(record.value))
        except msgspec.DecodeError:
            logger.error("skipping undecodable record %s/%s", record.partition, record.offset)
    return out


def start_spans(tracing: Tracing | None, name: str, messages: list[StoredMessage]) -> list[Span]:
    """A ``name`` span per traced message, each a child of its Sequencer span."""
    if tracing is None:
        return []
    return [
        tracing.start(name, m.trace, {"chatcore.chat": m.chat_id, "chatcore.seq": m.seq})
        for m in messages
        if isinstance(m, TracedMessage)
    ]


def untraced(messages: list[StoredMessage]) -> list[StoredMessage]:
    """The messages without their trace context, as stores and clients get them."""
    return [m.untraced() if isinstance(m, TracedMessage) else m for m in messages]


def end_spans(spans: list[Span]) -> None:
    for span in spans:
        span.end()


def envelope_bytes(conns: tuple[str, ...], event: Event) -> bytes:
    """What one gateway receives from the pipeline: ``event`` for its connections ``conns``."""
    return encode_envelope(Envelope(conns, event))


class HistoryWorker:
    """Writes sequenced messages to the MessageStore, then to the HotCache.

    A lifecycle event (edit, delete, reaction) is stored like a message and also
    applied to its target, whose new state replaces the stored one (the HotCache
    keeps first copies; the reader folds the events it holds into them).
    A sender has read what they sent: their watermarks in the chat are raised to
    their own latest message (events do not count), so their unread count does not
    count it.
    ``cache_per_chat``: messages of each chat the HotCache keeps (None: the cache's
    own option); raises InvalidRequest if below 1.
    """

    def __init__(
        self,
        log: PartitionedLog,
        messages: MessageStore,
        cache: HotCache,
        receipts: ReceiptStore,
        *,
        topics: Topics = DEFAULT_TOPICS,
        group: str = HISTORY.group,
        cache_per_chat: int | None = None,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
        tracing: Tracing | None = None,
    ) -> None:
        self._log, self._messages, self._cache = log, messages, cache
        self._clock, self._telemetry, self._tracing = clock, telemetry, tracing
        self._gaps = GapDetector()
        self._cache_per_chat = None if cache_per_chat is None else check_per_chat(cache_per_chat)
        self._receipts = receipts
        self._topic, self._group = topics.messages, group

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await consume(
            self._log,
            self._topic,
            self._group,
            decode_message if self._tracing is None else decode_traced_message,
            self._handle,
            task_status=task_status,
        )

    async def _handle(self, messages: list[StoredMessage]) -> None:
        spans = start_spans(self._tracing, "chatcore.store", messages)
        if spans:
            messages = untraced(messages)
        telemetry = self._telemetry
        for m in messages:
            if missing := self._gaps.see(m.chat_id, m.seq):
                logger.error("chat %s: %d seqs missing before %d", m.chat_id, missing, m.seq)
                telemetry.gap("history", missing)
        timer = Timer()
        await self._messages.append(messages)
        telemetry.store_write("messages", timer.seconds)
        events = [m for m in messages if m.is_event]
        if events:
            await self._apply(messages, events)
        own: dict[tuple[str, str], StoredMessage] = {}
        for m in messages:
            if not m.is_event:
                own[(m.chat_id, m.sender)] = m  # ascending seq per chat: the last one wins

        async def cache() -> None:
            await self._cache.push(messages, per_chat=self._cache_per_chat)
            telemetry.stage_done("stored", (m.ts for m in messages), self._clock())

        async def watermarks() -> None:
            timer = Timer()
            await self._receipts.advance_many(
                [
                    Watermarks(m.chat_id, m.sender, read_seq=m.seq, updated_ms=m.ts)
                    for m in own.values()
                ]
            )
            telemetry.store_write("receipts", timer.seconds)

        # Both only after the messages are stored; independent of each other.
        await both(cache, watermarks)
        end_spans(spans)

    async def _apply(self, batch: list[StoredMessage], events: list[StoredMessage]) -> None:
        """Store the targets of ``events`` with the events applied (idempotent: a
        target holds the last event applied to it, ``changed_seq``)."""
        in_batch = {(m.chat_id, m.seq): m for m in batch}
        states: dict[tuple[str, int], StoredMessage] = {}
        for key in dict.fromkeys((e.chat_id, e.target) for e in events):
            target = in_batch.get(key)
            if target is None:
                found = await self._messages.range(key[0], after=key[1] - 1, limit=1)
                target = found[0] if found and found[0].seq == key[1] else None
            if target is not None:
                states[key] = target
        for e in events:
            key = (e.chat_id, e.target)
            if key in states:
                states[key] = applied(states[key], e)
        changed = [m for key, m in states.items() if m is not in_batch.get(key)]
        await self._messages.replace([m for m in changed if m.changed_seq])


class DeliveryWorker:
    """Fans sequenced messages out to live devices; notes who was offline and pushes."""

    def __init__(
        self,
        log: PartitionedLog,
        membership: MembershipStore,
        registry: ConnectionRegistry,
        bus: GatewayBus,
        offline: OfflineIndex,
        push: PushNotifier,
        *,
        planner: FanoutPlanner | None = None,
        coalescer: PushCoalescer | None = None,
        topics: Topics = DEFAULT_TOPICS,
        group: str = DELIVERY.group,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
        tracing: Tracing | None = None,
    ) -> None:
        self._log, self._membership, self._registry = log, membership, registry
        self._bus, self._offline, self._push = bus, offline, push
        self._tracing = tracing
        self._planner = planner or FanoutPlanner()
        self._coalescer = coalescer or PushCoalescer()
        self._topic, self._group = topics.messages, group
        self._clock = clock
        self._telemetry = telemetry
        self.delivered = 0

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._flush_pushes)
            await tg.start(self._consume)
            task_status.started()

    async def _consume(self, *, task_status: TaskStatus[None]) -> None:
        await consume(
            self._log,
            self._topic,
            self._group,
            decode_message if self._tracing is None else decode_traced_message,
            self._handle,
            task_status=task_status,
        )

    async def _handle(self, messages: list[StoredMessage]) -> None:
        spans = start_spans(self._tracing, "chatcore.deliver", messages)
        if spans:
            messages = untraced(messages)
        await self._deliver(messages)
        end_spans(spans)

    async def _deliver(self, messages: list[StoredMessage]) -> None:
        # One membership call, one registry lookup and one bus call per batch.
        chats = await self._membership.get_chats(m.chat_id for m in messages)
        fanout = Fanout(
            self._bus, self._registry, self._planner, envelope_bytes, combine=join_envelopes
        )
        await fanout.lookup(m for chat in chats.values() for m in chat.members)
        missed: list[tuple[StoredMessage, list[str]]] = []
        for m in messages:
            chat = chats.get(m.chat_id)
            if chat is None:
                continue
            members = chat.members
            if m.is_event and chat.roles.joined:  # not to who joined after its target
                members = tuple(u for u in members if chat.visible_after(u) < m.target)
            offline = fanout.add(members, MessageEvent(m))
            offline_others = [u for u in offline if u != m.sender]
            if offline_others and not m.is_event:  # a change is no news: no push
                missed.append((m, offline_others))
        await fanout.publish()
        pushed = [m.ts for m in messages if m.chat_id in chats]
        self._telemetry.stage_done("pushed", pushed, self._clock())
        self.delivered += len(pushed)

        async def note(item: tuple[StoredMessage, list[str]]) -> None:
            m, offline_others = item
            await self._offline.add(offline_others, m.chat_id, m.seq)

        # One round trip per message, at most OFFLINE_CONCURRENCY at a time (the index
        # takes a chat's seqs in any order); then the pushes, in message order.
        await concurrently(note, missed, limit=OFFLINE_CONCURRENCY)
        now = self._clock()
        for m, offline_others in missed:
            preview = None if m.encrypted or m.kind != "text" else m.body[:80]
            for user in offline_others:
                self._coalescer.feed(
                    user, m.chat_id, m.sender, m.seq, preview, now_ms=now, encrypted=m.encrypted
                )
        await self._send_due()

    async def _send_due(self) -> None:
        due = self._coalescer.flush(now_ms=self._clock())
        if due:
            await self._push.notify(due)

    async def _flush_pushes(self) -> None:
        while True:
            await anyio.sleep(0.25)
            await self._send_due()
            self._telemetry.offline_pending(self._coalescer.pending)


class ReceiptWorker:
    """Raises receipt watermarks and tells the chat's members."""

    def __init__(
        self,
        log: PartitionedLog,
        receipts: ReceiptStore,
        membership: MembershipStore,
        registry: ConnectionRegistry,
        bus: GatewayBus,
        *,
        planner: FanoutPlanner | None = None,
        topics: Topics = DEFAULT_TOPICS,
        group: str = RECEIPTS.group,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._log, self._receipts, self._membership = log, receipts, membership
        self._clock, self._telemetry = clock, telemetry
        self._registry, self._bus = registry, bus
        self._planner = planner or FanoutPlanner()
        self._topic, self._group = topics.receipts, group

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await consume(
            self._log,
            self._topic,
            self._group,
            decode_receipt,
            self._handle,
            task_status=task_status,
        )

    async def _handle(self, receipts: list[ReceiptSubmitted]) -> None:
        # Only the highest receipt per (chat, user, status) of a batch matters.
        top: dict[tuple[str, str, str], ReceiptSubmitted] = {}
        for r in receipts:
            key = (r.chat_id, r.user, r.status)
            if key not in top or r.seq > top[key].seq:
                top[key] = r
        targets = [
            Watermarks(
                r.chat_id,
                r.user,
                delivered_seq=r.seq if r.status == "delivered" else 0,
                read_seq=r.seq if r.status == "read" else 0,
                updated_ms=r.ts,
            )
            for r in top.values()
        ]
        timer = Timer()
        moved = await self._receipts.advance_many(targets)  # the batch in one go
        self._telemetry.store_write("receipts", timer.seconds)
        by_chat: dict[str, list[ReceiptSubmitted]] = defaultdict(list)
        for r, after in zip(top.values(), moved, strict=True):
            if after is not None:
                by_chat[r.chat_id].append(r)
        if not by_chat:
            return
        chats = await self._membership.get_chats(by_chat)
        fanout = Fanout(
            self._bus, self._registry, self._planner, envelope_bytes, combine=join_envelopes
        )
        await fanout.lookup(m for chat in chats.values() for m in chat.members)
        for chat_id, news in by_chat.items():
            chat = chats.get(chat_id)
            if chat is None:
                continue
            for r in news:
                fanout.add(chat.members, ReceiptEvent(r.chat_id, r.user, r.status, r.seq, r.ts))
        await fanout.publish()
        told = [r.ts for news in by_chat.values() for r in news if r.chat_id in chats]
        self._telemetry.receipt_told(told, self._clock())
