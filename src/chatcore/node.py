"""ChatNode: the whole pipeline assembled over one set of backends.

``ChatNode`` is the library's main entry point. It opens the backends, creates the
log topics, leases a Snowflake node id, and runs the stages this process has the
roles for (all of them by default): the Router and ConnectionHub (the gateway side),
the Sequencer, and the History, Delivery and Receipt workers. A stage that fails
after start-up is restarted with a back-off; one that fails to start makes
``__aenter__`` raise. Which consuming stages exist, and their topics and consumer
groups, is the table :data:`~chatcore.pipeline.stages.STAGES`; :meth:`ChatNode.settled`
and :meth:`ChatNode.lag` read the log's offsets through it.

Its methods are what a gateway (or an in-process app, or a test) calls on behalf of
a user: they check permissions and answer with domain values.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup, TaskStatus

from chatcore._clock import wall_ms
from chatcore._gather import both
from chatcore.backends import Backends
from chatcore.cache._base import ChatBoundedCache
from chatcore.cache._rules import DEFAULT_MAX_CHATS, DEFAULT_PER_CHAT, check_max_chats
from chatcore.config import ProductionConfig
from chatcore.errors import (
    ChatcoreClosed,
    ChatcoreError,
    InvalidRequest,
    Overloaded,
    Unauthorized,
)
from chatcore.events import ChatEvent, KeysChangedEvent, TypingEvent
from chatcore.fanout import FanoutPlanner, publish_to_members
from chatcore.ids import NodeLease, SnowflakeGenerator
from chatcore.keys import DeviceKey
from chatcore.log._base import PartitionedLog, RetainingLog
from chatcore.model import (
    Attachment,
    ChatInfo,
    ChatKind,
    ChatState,
    EventKind,
    HistoryPage,
    MessageKind,
    PresenceState,
    ReceiptStatus,
    SyncResult,
)
from chatcore.pipeline.backpressure import Backpressure, DeliveryLag
from chatcore.pipeline.chats import ChatCache, ChatDirectory
from chatcore.pipeline.hub import ConnectionHub, LocalConnection
from chatcore.pipeline.lifecycle import LifecycleLimits
from chatcore.pipeline.progress import StageProgress, check_wait_s
from chatcore.pipeline.reader import HistoryReader
from chatcore.pipeline.records import Topics
from chatcore.pipeline.router import Accepted, Router
from chatcore.pipeline.sequencer import Sequencer
from chatcore.pipeline.stages import DELIVERY, HISTORY, RECEIPTS, SEQUENCER, STAGES, Role, Stage
from chatcore.pipeline.workers import (
    DeliveryWorker,
    HistoryWorker,
    ReceiptWorker,
    envelope_bytes,
)
from chatcore.presence.visibility import Visibility, hidden_state, took_part, visibility
from chatcore.push import PushKind, PushTarget, WebPushKeys
from chatcore.ratelimit import RateLimiter, RateLimitHook
from chatcore.telemetry import NO_TELEMETRY, Telemetry
from chatcore.telemetry.tracing import Tracing

__all__ = ["ChatNode", "NodeOptions", "Role", "create_topics"]

logger = logging.getLogger(__name__)

ALL_ROLES: frozenset[Role] = frozenset({"gateway", *(stage.role for stage in STAGES)})
_SETTLE_POLL_S = 0.005


@dataclass(kw_only=True, frozen=True)
class NodeOptions:
    """How a node runs. Every field has a default that suits one process."""

    partitions: int = 8
    """Partitions of the log topics (fixed once the topics exist)."""
    roles: frozenset[Role] = ALL_ROLES
    """Which stages this process runs; several processes can split them."""
    gateway_id: str | None = None
    """This gateway's name on the bus (random when None)."""
    topic_prefix: str = ""
    """Put before every topic name (``"tenant1."`` gives ``tenant1.chat.submitted``), so
    several deployments can share one Kafka cluster."""
    max_group_members: int = 256
    """The most members a group may have, its creator included."""
    max_body_bytes: int = 16 * 1024
    """The largest message body in UTF-8 bytes; a larger send is refused (FrameTooLarge)."""
    edit_window_s: float | None = None
    """How long after sending its author may edit a message (None: no limit; see
    docs/messages.md)."""
    max_reaction_bytes: int = 64
    """The longest reaction (one emoji, UTF-8 bytes)."""
    max_reactions: int = 64
    """The most distinct emoji one message holds."""
    rate_limit: RateLimitHook | None = None
    """Asked before each send (see :mod:`chatcore.ratelimit`); None: the node sets no limit
    (the reference server sets its own, see docs/decisions.md)."""
    presence_ttl_s: float = 60.0
    """How long a device counts as online after its last heartbeat (a crashed gateway's
    users go offline within it)."""
    heartbeat_s: float = 30.0
    """How often this gateway refreshes its devices' presence and registrations; must be
    below ``presence_ttl_s``."""
    connection_queue: int = 1024
    """Events a connection may have waiting before it is closed as a slow consumer."""
    hot_cache_per_chat: int = DEFAULT_PER_CHAT
    """Newest messages of each chat the HotCache keeps (100); history pages within them
    are read without the MessageStore. Applies whatever cache the backends hold."""
    hot_cache_max_chats: int = DEFAULT_MAX_CHATS
    """The most chats a HotCache in this process's memory keeps (10 000), the least
    recently used dropped first (their history is read from the MessageStore). Applies
    to caches with that capability (:class:`~chatcore.cache.ChatBoundedCache`, e.g.
    ``MemoryHotCache``); Redis bounds its own memory."""
    chat_create_rate_per_s: float = 0.5
    """Chats one user may create per second, sustained (30 a minute); asking for a
    direct chat that exists is free. Past it: RateLimited with ``retry_after_ms``."""
    chat_create_burst: int = 20
    """Chats one user may create at once before ``chat_create_rate_per_s`` applies."""
    max_delivery_backlog: int | None = 5_000
    """The most messages that may wait between acceptance and delivery (not yet
    sequenced, or sequenced and not yet delivered, whichever process runs those
    stages); past it sends are refused as ``overloaded`` (retriable, with
    ``retry_after_ms``) and nothing is appended, so latency stays bounded whatever the
    offered load. None: no bound (latency then grows with an overload)."""
    backlog_sample_s: float = 0.05
    """How long a read of that backlog from the log is trusted (0: read per send);
    sends admitted in between count one each."""
    max_delivery_lag_s: float | None = 0.25
    """How late after acceptance this gateway may push messages to its connections
    (what the log's backlog does not see: the gateway's own queues). While at least a
    tenth (and at least 8) of its connections' takes of their queued events in the last
    ``delivery_lag_window_s`` found the oldest one later than this, its sends are
    refused as ``overloaded`` (``retry_after_ms`` 250), so a gateway whose core cannot
    push what it accepts stops accepting it. None: no such bound (see
    docs/decisions.md)."""
    delivery_lag_window_s: float = 0.1
    """The window ``max_delivery_lag_s`` is judged over."""
    dedupe_window_ms: int = 24 * 3600 * 1000
    """How long the Sequencer remembers a ``client_msg_id`` to drop a retried send (24 h;
    see docs/decisions.md)."""
    sync_per_chat: int = 100
    """The most missed messages one sync returns per chat; the rest is marked
    ``truncated`` and read through history."""
    history_wait_s: float = 5.0
    """How long a sync waits for the History stage to have stored every message
    sequenced before it (Delivery may run ahead of History); past it the sync is
    refused as ``overloaded`` (retriable) rather than answered short."""
    membership_cache_ttl_s: float = 1.0
    """How long a chat's member list read for a send is trusted (0: read every time).
    Changes made through this node apply at once; made through another node, within
    this bound (see docs/decisions.md)."""
    restart_backoff_s: float = 0.5
    """How long a failed stage waits before it is restarted."""
    node_lease_ttl_s: float = 60.0
    """The lease on this node's Snowflake node id; renewed every third of it, so a node
    that dies frees its id within this time."""
    telemetry: Telemetry = NO_TELEMETRY
    """Receives stage latencies, store write times, gaps and the like (see
    ``chatcore.telemetry``); the server and ``chatcore worker`` pass Prometheus metrics."""
    tracing: Tracing | None = None
    """OpenTelemetry spans for each message's path through the pipeline (None: off; see
    ``chatcore.telemetry.tracing``, the ``tracing`` extra)."""

    @classmethod
    def from_config(
        cls, config: ProductionConfig, *, roles: frozenset[Role] | None = None, **options: Any
    ) -> NodeOptions:
        """Options matching ``config`` (partitions, topic prefix, presence timing) for ``roles``.

        ``options`` are other fields; a field ``config`` also sets is taken from ``config``.
        """
        if roles is not None:
            options["roles"] = roles
        return cls(
            **{
                **options,
                "partitions": config.partitions,
                "topic_prefix": config.topic_prefix,
                "presence_ttl_s": config.presence_ttl_s,
                "heartbeat_s": config.heartbeat_s,
            }
        )


def _ms(name: str, seconds: float) -> int:
    """``seconds`` as whole milliseconds (at least 1); raises InvalidRequest unless > 0."""
    if not seconds > 0:
        raise InvalidRequest(f"{name} must be > 0, got {seconds}")
    return max(1, round(seconds * 1000))


async def create_topics(log: PartitionedLog, topics: Topics, *, partitions: int) -> None:
    """Create the pipeline's topics (idempotent): every one with the same partition count."""
    for topic in (topics.submitted, topics.messages, topics.receipts):
        await log.create_topic(topic, partitions=partitions)
    await log.create_topic(topics.sequencer_state, partitions=partitions, compacted=True)


class ChatNode:
    """Runs the chat pipeline over ``backends`` and serves users' requests."""

    def __init__(self, backends: Backends, options: NodeOptions | None = None) -> None:
        self.backends = backends
        self.options = opts = options or NodeOptions()
        self.topics = Topics.prefixed(opts.topic_prefix)
        self.gateway_id = opts.gateway_id or f"gw-{secrets.token_hex(4)}"
        self.planner = FanoutPlanner()
        self.chat_cache = ChatCache(backends.membership, ttl_s=opts.membership_cache_ttl_s)
        self.stage_failures: Counter[str] = Counter()
        check_wait_s("history_wait_s", opts.history_wait_s)
        check_max_chats(opts.hot_cache_max_chats)
        if isinstance(backends.cache, ChatBoundedCache):
            backends.cache.limit_chats(opts.hot_cache_max_chats)
        self.backpressure: Backpressure | None = None
        """The bound on the delivery backlog the Router applies (None: unbounded)."""
        if opts.max_delivery_backlog is not None:
            self.backpressure = Backpressure(
                self._delivery_backlog,
                max_backlog=opts.max_delivery_backlog,
                sample_s=opts.backlog_sample_s,
            )
        self.delivery_lag: DeliveryLag | None = None
        """The bound on how late this gateway hands messages on (None: unbounded)."""
        if opts.max_delivery_lag_s is not None:
            self.delivery_lag = DeliveryLag(
                max_lag_ms=_ms("max_delivery_lag_s", opts.max_delivery_lag_s),
                window_ms=_ms("delivery_lag_window_s", opts.delivery_lag_window_s),
            )
        try:
            self.chat_create_limit = RateLimiter(
                rate_per_s=opts.chat_create_rate_per_s, burst=opts.chat_create_burst
            )
        except ValueError as exc:
            raise InvalidRequest(f"chat creation limit: {exc}") from exc
        self.history_progress = StageProgress(
            backends.log, HISTORY.topic(self.topics), HISTORY.group
        )
        """The History stage's progress, wherever it runs: what sync waits on."""
        self.sequencer_progress = StageProgress(
            backends.log, SEQUENCER.topic(self.topics), SEQUENCER.group
        )
        self.delivery_progress = StageProgress(
            backends.log, DELIVERY.topic(self.topics), DELIVERY.group
        )
        self._stack: AsyncExitStack | None = None
        self._tg: TaskGroup | None = None
        self._lease: NodeLease | None = None
        self._ids: SnowflakeGenerator | None = None
        b = backends
        self.reader = HistoryReader(
            b.messages,
            b.cache,
            b.receipts,
            b.membership,
            b.offline,
            sync_per_chat=opts.sync_per_chat,
        )
        self.hub = ConnectionHub(
            self.gateway_id,
            b.bus,
            b.registry,
            b.presence,
            queue_size=opts.connection_queue,
            heartbeat_s=opts.heartbeat_s,
            ttl_s=opts.presence_ttl_s,
            telemetry=opts.telemetry,
            lag=self.delivery_lag,
        )
        self.hub.members_removed = self._recheck_watches
        self.sequencer = Sequencer(
            b.log,
            topics=self.topics,
            dedupe_window_ms=opts.dedupe_window_ms,
            telemetry=opts.telemetry,
            tracing=opts.tracing,
        )
        self.history_worker = HistoryWorker(
            b.log,
            b.messages,
            b.cache,
            b.receipts,
            topics=self.topics,
            cache_per_chat=opts.hot_cache_per_chat,
            telemetry=opts.telemetry,
            tracing=opts.tracing,
        )
        self.delivery_worker = DeliveryWorker(
            b.log,
            b.membership,
            b.registry,
            b.bus,
            b.offline,
            b.push,
            planner=self.planner,
            topics=self.topics,
            telemetry=opts.telemetry,
            tracing=opts.tracing,
        )
        self.receipt_worker = ReceiptWorker(
            b.log,
            b.receipts,
            b.membership,
            b.registry,
            b.bus,
            planner=self.planner,
            topics=self.topics,
            telemetry=opts.telemetry,
        )
        self.stages: tuple[Stage, ...] = tuple(s for s in STAGES if s.role in opts.roles)
        """The consuming stages this node runs, in pipeline order."""
        self._stage_runs: dict[Stage, Callable[..., Coroutine[Any, Any, None]]] = {
            SEQUENCER: self.sequencer.run,
            HISTORY: self.history_worker.run,
            DELIVERY: self.delivery_worker.run,
            RECEIPTS: self.receipt_worker.run,
        }

    # -- construction ---------------------------------------------------------------

    @classmethod
    def in_memory(cls, **options: Any) -> ChatNode:
        """A node on memory backends (``options`` are :class:`NodeOptions` fields)."""
        return cls(Backends.in_memory(), NodeOptions(**options))

    @classmethod
    def embedded(cls, data_dir: str | Path, **options: Any) -> ChatNode:
        """A node whose log and stores live in SQLite files under ``data_dir``."""
        return cls(Backends.embedded(data_dir), NodeOptions(**options))

    async def __aenter__(self) -> Self:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            await self._start(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def _start(self, stack: AsyncExitStack) -> None:
        b, opts = self.backends, self.options
        for extra in b.extra:
            stack.push_async_callback(extra.aclose)
        if b.blobs is not None:
            await stack.enter_async_context(b.blobs)
        await stack.enter_async_context(b.uploads)
        for adapter in (
            b.leases,
            b.keys,
            b.push_tokens,  # closed after the notifier that reads it
            b.push,
            b.offline,
            b.cache,
            b.bus,
            b.registry,
            b.presence,
            b.membership,
            b.receipts,
            b.messages,
            b.log,
        ):
            await stack.enter_async_context(adapter)
        await create_topics(b.log, self.topics, partitions=opts.partitions)
        if isinstance(b.log, RetainingLog):  # every stage, wherever it runs, reads it all
            for stage in STAGES:
                b.log.expect_group(stage.topic(self.topics), stage.group)
        self._lease = await b.leases.acquire(self.gateway_id, ttl_s=opts.node_lease_ttl_s)
        self._ids = SnowflakeGenerator(self._lease.node_id)
        self.router = Router(
            b.log,
            b.membership,
            b.messages,
            self._ids,
            topics=self.topics,
            rate_limit=opts.rate_limit,
            max_body_bytes=opts.max_body_bytes,
            chats=self.chat_cache,
            telemetry=opts.telemetry,
            tracing=opts.tracing,
            last_seq=self._receipt_bound,
            admit=self._admit
            if self.backpressure is not None or self.delivery_lag is not None
            else None,
            lifecycle=LifecycleLimits(
                edit_window_ms=None
                if opts.edit_window_s is None
                else int(opts.edit_window_s * 1000),
                max_body_bytes=opts.max_body_bytes,
                max_reaction_bytes=opts.max_reaction_bytes,
                max_reactions=opts.max_reactions,
            ),
            uploads=b.uploads,
        )
        self.chats_dir = ChatDirectory(
            b.membership,
            self._ids,
            b.registry,
            b.bus,
            last_seq=self.reader.last_seq,
            settled_last_seq=self._settled_last_seq,
            planner=self.planner,
            cache=self.chat_cache,
            max_members=opts.max_group_members,
            create_limit=self.chat_create_limit,
        )
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        self._tg = tg
        stages: dict[str, Callable[..., Coroutine[Any, Any, None]]] = {"lease": self._renew_lease}
        if "gateway" in opts.roles:
            stages["hub"] = self.hub.run
        for stage in self.stages:
            stages[stage.name] = self._stage_runs[stage]
        for name, run in stages.items():
            await tg.start(self._supervise, name, run)

    async def _supervise(
        self,
        name: str,
        run: Callable[..., Coroutine[Any, Any, None]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False
        while True:
            try:
                async with anyio.create_task_group() as tg:
                    await tg.start(run)
                    if not started:
                        started = True
                        task_status.started()
                return
            except Exception:
                if not started:
                    raise
                self.stage_failures[name] += 1
                logger.exception("stage %s failed; restarting it", name)
                await anyio.sleep(self.options.restart_backoff_s)

    async def _renew_lease(self, *, task_status: TaskStatus[None]) -> None:
        task_status.started()
        while True:
            await anyio.sleep(self.options.node_lease_ttl_s / 3)
            assert self._lease is not None
            self._lease = await self.backends.leases.renew(self._lease)

    def _running(self) -> None:
        if self._stack is None:
            raise ChatcoreClosed("the node is not running (use `async with node:`)")

    # -- progress of the pipeline -------------------------------------------------------

    async def settled(self, *, timeout_s: float = 10.0) -> None:
        """Wait until every stage this node runs has consumed what was appended so far.

        The stages (:attr:`stages`) are awaited in pipeline order, each until its
        consumer group has committed its input topic up to the end offsets read when
        its turn comes: so the messages the Sequencer writes for the submitted
        records count too. A stage commits a batch after handling it, so once this
        returns the History worker has stored the messages, the Delivery worker has
        published them on the bus, and the Receipt worker has raised the watermarks
        (a gateway's connections receive what the bus carries in their own time).
        Records appended after the call may be consumed too, but are not waited for.

        A barrier for tests and tools: it polls the log's offsets. Raises
        ``TimeoutError`` naming the stage still behind after ``timeout_s`` seconds (one
        that is not running, or is stuck); :class:`~chatcore.errors.ChatcoreClosed`
        outside ``async with``.
        """
        self._running()
        log = self.backends.log
        behind: dict[int, int] = {}
        with anyio.move_on_after(timeout_s) as waiting:
            for stage in self.stages:
                topic = stage.topic(self.topics)
                ends = await log.end_offsets(topic)
                while True:
                    behind = await log.backlog(topic, group=stage.group, ends=ends)
                    if not any(behind.values()):
                        break
                    await anyio.sleep(_SETTLE_POLL_S)  # the log port has no offset events
        if waiting.cancelled_caught:
            late = sorted(p for p, n in behind.items() if n)
            raise TimeoutError(
                f"the pipeline did not settle within {timeout_s} s: stage {stage.name!r} "
                f"(group {stage.group!r}) has not committed partitions {late} of "
                f"{stage.topic(self.topics)!r} up to their ends; is it running?"
            )

    async def lag(self) -> dict[Stage, int]:
        """Per stage of the pipeline, whichever process runs it: offsets not yet committed.

        Read from the log (:meth:`~chatcore.log.PartitionedLog.backlog` summed over
        partitions); 0 when the stage has consumed every record appended so far. On
        Kafka a stage behind counts transaction markers too. Raises the log's errors
        (:class:`~chatcore.errors.Unavailable`).
        """
        self._running()
        log = self.backends.log
        return {
            stage: sum((await log.backlog(stage.topic(self.topics), group=stage.group)).values())
            for stage in STAGES
        }

    # -- chats ------------------------------------------------------------------------

    async def create_chat(
        self,
        user: str,
        *,
        kind: ChatKind,
        members: Sequence[str],
        title: str | None = None,
        history_visible: bool = True,
    ) -> ChatInfo:
        """Create a chat (a direct chat that exists is returned as it is); a group's
        creator is its first admin (docs/groups.md)."""
        self._running()
        return await self.chats_dir.create(
            user, kind=kind, members=members, title=title, history_visible=history_visible
        )

    async def update_members(
        self,
        user: str,
        chat_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        promote: Sequence[str] = (),
        demote: Sequence[str] = (),
        history_visible: bool | None = None,
    ) -> ChatInfo:
        """Change a group's members, admins or options; raises NotFound, NotMember or
        InvalidRequest (a rule of docs/groups.md broken: nothing changes)."""
        self._running()
        return await self.chats_dir.update_members(
            user,
            chat_id,
            add=add,
            remove=remove,
            promote=promote,
            demote=demote,
            history_visible=history_visible,
        )

    async def leave(self, user: str, chat_id: str) -> ChatInfo:
        """Leave a group (anyone may; the last admin leaving promotes the longest-standing
        member); returns the group without ``user``."""
        return await self.update_members(user, chat_id, remove=[user])

    async def chat(self, user: str, chat_id: str) -> ChatState:
        """One chat as ``user`` sees it; raises NotFound or NotMember."""
        self._running()
        chat = await self.router.chat_for(user, chat_id)
        (state,) = await self.reader.states(user, [chat])
        return state

    async def chats(self, user: str) -> list[ChatState]:
        """Every chat of ``user`` with last seq, watermarks and unread count."""
        self._running()
        chats = await self.reader.chats_of(user)
        return await self.reader.states(user, chats, with_others=True)

    async def last_seq(self, chat_id: str) -> int:
        """The seq of the newest message of ``chat_id`` (0: none). No permission check:
        for a caller that has just made one (a chat's view after a member change)."""
        self._running()
        return await self.reader.last_seq(chat_id)

    # -- messages ---------------------------------------------------------------------

    async def send(
        self,
        user: str,
        chat_id: str,
        *,
        client_msg_id: str,
        body: str = "",
        kind: MessageKind = "text",
        attachment: Attachment | None = None,
        encrypted: bool = False,
        device: str = "",
        retry: bool = True,
    ) -> Accepted:
        """Send a message; returns once it is durable (see :class:`Router`).

        ``retry=False`` says this ``client_msg_id`` was never sent before: the store
        lookup for an earlier copy is skipped (the wire's ``send.retry``)."""
        self._running()
        return await self.router.send(
            user,
            chat_id,
            client_msg_id=client_msg_id,
            body=body,
            kind=kind,
            attachment=attachment,
            encrypted=encrypted,
            device=device,
            retry=retry,
        )

    async def edit(
        self,
        user: str,
        chat_id: str,
        seq: int,
        body: str,
        *,
        encrypted: bool = False,
        device: str = "",
    ) -> Accepted:
        """Replace the body of ``user``'s message ``seq`` (an ``edit`` event in the chat);
        raises NotFound, NotMember, InvalidRequest (not the author, past the edit window,
        deleted), FrameTooLarge, Overloaded: then nothing changed."""
        self._running()
        return await self.router.change(
            user, chat_id, "edit", seq, body=body, encrypted=encrypted, device=device
        )

    async def delete(self, user: str, chat_id: str, seq: int, *, device: str = "") -> Accepted:
        """Delete message ``seq`` for everyone (a tombstone): its author, or a group's
        admin; raises NotFound, NotMember, InvalidRequest, Overloaded."""
        self._running()
        return await self.router.change(user, chat_id, "delete", seq, device=device)

    async def react(
        self,
        user: str,
        chat_id: str,
        seq: int,
        emoji: str,
        *,
        remove: bool = False,
        device: str = "",
    ) -> Accepted:
        """Add (or, ``remove``, take back) ``user``'s ``emoji`` reaction to message ``seq``;
        raises NotFound, NotMember, InvalidRequest, Overloaded."""
        self._running()
        kind: EventKind = "unreact" if remove else "react"
        return await self.router.change(user, chat_id, kind, seq, body=emoji, device=device)

    async def receipt(self, user: str, chat_id: str, status: ReceiptStatus, seq: int) -> None:
        """Record that ``user`` received or read ``chat_id`` up to ``seq``."""
        self._running()
        await self.router.receipt(user, chat_id, status, seq)

    async def history(
        self,
        user: str,
        chat_id: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> HistoryPage:
        """A page of ``chat_id``'s history; raises NotFound, NotMember, InvalidRequest.

        A page ``after`` a seq (filling a gap, catching up) covers every message
        sequenced before the call, as :meth:`sync` does (and may raise Overloaded).
        """
        self._running()
        chat = await self.router.chat_for(user, chat_id)
        if after is not None:
            await self._caught_up(self.history_progress)
        return await self.reader.page(
            chat_id, before=before, after=after, limit=limit, since=chat.visible_after(user)
        )

    async def sync(self, user: str, cursors: Mapping[str, int] | None = None) -> SyncResult:
        """What ``user`` missed since ``cursors``, and their chats' states.

        Covers every message sequenced before the call: it first waits (at most
        ``history_wait_s``) for the History stage to have stored them all, since
        Delivery may already have pushed newer ones than the store holds. Raises
        :class:`~chatcore.errors.Overloaded` (retriable) when History stays behind.
        """
        self._running()
        await self._caught_up(self.history_progress)
        return await self.reader.sync(user, cursors)

    async def _admit(self) -> None:
        """The Router's question before a send: refused (Overloaded) while this gateway
        hands messages on too late or the log's delivery backlog is too long."""
        if self.delivery_lag is not None:
            self.delivery_lag.check(self.hub.clock())
        if self.backpressure is not None:
            await self.backpressure.admit()

    async def _delivery_backlog(self) -> int:
        """Records accepted and not yet delivered: the Sequencer's and Delivery's backlog
        (offsets; on Kafka the Sequencer's transaction markers count too)."""
        sequencer, delivery = await both(
            self.sequencer_progress.offsets_behind, self.delivery_progress.offsets_behind
        )
        return sequencer + delivery

    async def _receipt_bound(self, chat_id: str, seq: int) -> int:
        """The last seq a receipt up to ``seq`` may name: read again, when ``seq`` is
        beyond what is stored, once the Sequencer and History have handled what was
        accepted before (a device may acknowledge a message it got live before it
        was stored). Raises Overloaded when they stay behind."""
        last = await self.reader.last_seq(chat_id)
        if seq > last:
            await self._caught_up(self.sequencer_progress)
            await self._caught_up(self.history_progress)
            last = await self.reader.last_seq(chat_id)
        return last

    async def _settled_last_seq(self, chat_id: str) -> int:
        """The chat's last seq once every message accepted before is stored (Overloaded
        when the pipeline stays behind)."""
        await self._caught_up(self.sequencer_progress)
        await self._caught_up(self.history_progress)
        return await self.reader.last_seq(chat_id)

    async def _caught_up(self, progress: StageProgress) -> None:
        wait_s = self.options.history_wait_s
        if not await progress.caught_up(timeout_s=wait_s):
            raise Overloaded(
                f"the pipeline is more than {wait_s} s behind ({progress.group}); try again later",
                retry_after_ms=max(1, int(wait_s * 1000)),
            )

    async def typing(self, user: str, chat_id: str) -> None:
        """Tell the other online members that ``user`` is typing (not stored)."""
        self._running()
        chat = await self.router.chat_for(user, chat_id)
        others = [m for m in chat.members if m != user]
        await publish_to_members(
            self.backends.bus,
            self.backends.registry,
            self.planner,
            others,
            TypingEvent(chat_id, user),
            encode=envelope_bytes,
        )

    # -- presence and connections ------------------------------------------------------

    async def contacts(self, user: str) -> set[str]:
        """Users who share at least one chat with ``user``."""
        return {m for chat in await self.reader.chats_of(user) for m in chat.members} - {user}

    async def presence(self, user: str, users: Sequence[str]) -> list[PresenceState]:
        """Presence of ``users`` as ``user`` may see it (:mod:`chatcore.presence.visibility`):
        one who shares no chat with ``user`` raises Unauthorized; one who shares chats
        but took part in none of them (created, sent or read) is shown offline, never seen.
        """
        self._running()
        return (await self._presence(user, users))[0]

    async def _presence(
        self, user: str, users: Sequence[str]
    ) -> tuple[list[PresenceState], list[str]]:
        """The states of ``users`` and those of them ``user`` may follow."""
        if len(users) > 1024:
            raise InvalidRequest("at most 1024 users per presence request")
        verdicts = await self.presence_visibility(user, users)
        strangers = sorted(u for u, v in verdicts.items() if v is Visibility.STRANGER)
        if strangers:
            raise Unauthorized(f"no chat shared with {strangers}")
        visible = [u for u, v in verdicts.items() if v is Visibility.VISIBLE]
        states = await self.backends.presence.states(visible, now_ms=wall_ms())
        return [states.get(u) or hidden_state(u) for u in users], visible

    async def presence_visibility(self, user: str, users: Iterable[str]) -> dict[str, Visibility]:
        """How much of each of ``users``' presence ``user`` may see."""
        mine = await self.reader.chats_of(user)
        out: dict[str, Visibility] = {}
        for other in set(users):
            shared = [c for c in mine if c.has_member(other)]
            if other == user or any(took_part(other, c, None) for c in shared):
                out[other] = Visibility.VISIBLE
                continue
            marks = await self.backends.receipts.for_user(other, [c.chat_id for c in shared])
            out[other] = visibility(other, shared, marks)
        return out

    async def watch_presence(
        self, conn: LocalConnection, users: Sequence[str]
    ) -> list[PresenceState]:
        """Presence of ``users`` now, as :meth:`presence` for ``conn``'s user, and the
        changes of those it may see pushed to ``conn`` until a change of members leaves
        them no chat that allows it."""
        states, visible = await self._presence(conn.user, users)
        self.hub.watch_presence(conn, visible)
        return states

    async def _recheck_watches(self, event: ChatEvent, conns: list[LocalConnection]) -> None:
        """After members were taken out of a chat, stop the watches of ``conns`` (its
        members' local connections, past and present) that no chat allows any more: a
        removed user's watches, and the others' watches of removed users."""
        for conn in conns:
            watched = self.hub.presence.watched_by(conn)
            if conn.user not in event.removed:
                watched = watched & frozenset(event.removed)
            if not watched:
                continue
            verdicts = await self.presence_visibility(conn.user, watched)
            lost = [u for u, v in verdicts.items() if v is not Visibility.VISIBLE]
            self.hub.unwatch_presence(conn, lost)

    def unwatch_presence(self, conn: LocalConnection, users: Sequence[str]) -> None:
        """Stop pushing the presence changes of ``users`` to ``conn``."""
        self.hub.unwatch_presence(conn, users)

    async def open_connection(self, user: str, device: str) -> LocalConnection:
        """Register a device connection of ``user`` on this node's gateway."""
        self._running()
        return await self.hub.open(user, device)

    @asynccontextmanager
    async def connect(self, user: str, device: str) -> AsyncIterator[LocalConnection]:
        """A device connection for the duration of the ``async with`` block."""
        conn = await self.open_connection(user, device)
        try:
            yield conn
        finally:
            await conn.aclose()

    # -- push targets --------------------------------------------------------------------

    async def register_push(
        self,
        user: str,
        device: str,
        *,
        kind: PushKind,
        token: str,
        keys: WebPushKeys | None = None,
    ) -> PushTarget:
        """Reach ``user``'s ``device`` through ``kind`` while it is offline (replaces the
        device's earlier target); returns the target stored.

        Raises InvalidRequest for a target of the wrong shape or size, or a Web Push
        endpoint outside the allowed push services (``Backends.push_tokens``' rules);
        nothing changes then.
        """
        self._running()
        target = PushTarget(user, device, kind, token, keys)
        await self.backends.push_tokens.register(target)
        return target

    async def unregister_push(self, user: str, device: str) -> None:
        """Stop pushing to ``user``'s ``device`` (fine if it registered nothing)."""
        self._running()
        await self.backends.push_tokens.unregister(user, device)

    # -- end-to-end encryption keys ------------------------------------------------------

    async def publish_key(self, user: str, device: str, *, version: int, public_key: str) -> bool:
        """Publish ``device``'s public key (a higher ``version`` rotates it); True if it
        changed anything (the current version and key again change nothing).

        Raises InvalidRequest for a malformed key, a stale version, or a new device past
        the user's limit (:mod:`chatcore.keys.rules`); nothing changes then.
        """
        self._running()
        changed = await self.backends.keys.publish(DeviceKey(user, device, version, public_key))
        if changed:
            event = KeysChangedEvent(user, device, version, public_key)
            await self._keys_changed(event, by_device=device)
        return changed

    async def fetch_keys(self, user: str, users: Sequence[str]) -> dict[str, list[DeviceKey]]:
        """The device keys of ``users`` (each user's devices, maybe none), as ``user`` may
        see them: only users who share a chat with ``user``, and ``user`` itself.

        Raises Unauthorized naming the users who share no chat (nothing is returned
        then) and InvalidRequest for more than 1024 users.
        """
        self._running()
        wanted = list(dict.fromkeys(users))
        if len(wanted) > 1024:
            raise InvalidRequest("at most 1024 users per key request")
        strangers = sorted(set(wanted) - await self.contacts(user) - {user})
        if strangers:
            raise Unauthorized(f"no chat shared with {strangers}")
        found: dict[str, list[DeviceKey]] = {u: [] for u in wanted}
        for key in await self.backends.keys.keys(wanted):
            found[key.user].append(key)
        for devices in found.values():
            devices.sort(key=lambda k: k.device)
        return found

    async def fetch_chat_keys(self, user: str, chat_id: str) -> dict[str, list[DeviceKey]]:
        """The device keys of every member of ``chat_id`` (``user``'s own included), as
        :meth:`fetch_keys`; raises NotFound or NotMember."""
        self._running()
        chat = await self.router.chat_for(user, chat_id)
        return await self.fetch_keys(user, chat.members)

    async def revoke_key(self, user: str, device: str, *, by_device: str | None = None) -> bool:
        """Forget the key of ``user``'s ``device``; True if it had one. ``by_device``:
        the device of ``user`` asking (it gets no ``keys.changed`` push)."""
        self._running()
        revoked = await self.backends.keys.revoke(user, device)
        if revoked:
            await self._keys_changed(KeysChangedEvent(user, device), by_device=by_device)
        return revoked

    async def _keys_changed(self, event: KeysChangedEvent, *, by_device: str | None) -> None:
        """Push ``keys.changed`` to the live devices of the user (but ``by_device``, which
        made the change) and of everyone who shares a chat with them, through the bus as
        typing and chat events go.

        The key is stored by then: a failure to tell is logged, not raised (a retried
        publish would change nothing and tell no one); a client that missed the event
        drops its cached keys when it reconnects."""
        try:
            audience = [event.user, *sorted(await self.contacts(event.user))]
            await publish_to_members(
                self.backends.bus,
                self.backends.registry,
                self.planner,
                audience,
                event,
                encode=envelope_bytes,
                skip_device=None if by_device is None else (event.user, by_device),
            )
        except ChatcoreError as exc:
            logger.warning("keys.changed of %s not delivered: %s", event.user, exc)
