"""The ConnectionHub: the live device connections one gateway process holds.

It registers connections in the ConnectionRegistry (and keeps them fresh with
heartbeats, so a gateway that dies without saying goodbye fades out after the TTL)
and makes their devices present through a
:class:`~chatcore.presence.tracker.PresenceTracker`. It receives this gateway's
envelopes from the GatewayBus and hands each event to the target connections'
bounded queues. A connection whose queue is full is a slow consumer: it is closed
(the client reconnects and syncs), so one slow device never holds up the others.
Presence changes reach connections that watch those users.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

import anyio
import anyio.lowlevel
import msgspec
from anyio.abc import TaskStatus

from chatcore._clock import wall_ms
from chatcore.bus._base import GatewayBus
from chatcore.errors import ChatcoreClosed
from chatcore.events import ChatEvent, Event, MessageEvent, PresenceEvent, decode_envelopes
from chatcore.model import Connection, PresenceState
from chatcore.pipeline.backpressure import DeliveryLag
from chatcore.presence._base import PresenceStore
from chatcore.presence.rules import PresenceRules
from chatcore.presence.tracker import PresenceTracker
from chatcore.registry._base import ConnectionRegistry
from chatcore.telemetry import NO_TELEMETRY, Telemetry

__all__ = ["CloseReason", "ConnectionHub", "LocalConnection"]

logger = logging.getLogger(__name__)

CloseReason = Literal["closed", "slow_consumer", "shutdown"]

_YIELD_EVERY = 16
"""Envelopes of one bus payload the hub queues before it lets other tasks run (the
connections' writers), so a payload joined from a large batch does not hold the loop
for all of its fanout."""


class LocalConnection:
    """One device connection held by this process. Read events with :meth:`receive`
    or :meth:`receive_many` (one reader at a time)."""

    __slots__ = (
        "_ended",
        "_hub",
        "_queue",
        "_queue_size",
        "_ready",
        "_unregistered",
        "_wakeup",
        "close_reason",
        "info",
    )

    def __init__(self, hub: ConnectionHub, conn: Connection, queue_size: int) -> None:
        self.info = conn
        self._hub = hub
        self._queue: list[Event] = []  # a deque costs ~600 bytes per idle connection
        self._queue_size = queue_size
        self._wakeup: anyio.Event | None = None
        self._ready: Callable[[], None] | None = None
        self._ended = False
        self.close_reason: CloseReason | None = None
        self._unregistered = False

    @property
    def user(self) -> str:
        return self.info.user

    @property
    def device(self) -> str:
        return self.info.device

    async def receive(self) -> Event:
        """The next event; raises ChatcoreClosed once the connection is closed and
        every event queued before that has been read."""
        while not self._queue:
            await self._wait_once()
        return self._queue.pop(0)

    async def receive_many(self) -> list[Event]:
        """Every queued event, oldest first, waiting for one if none is queued.

        One wakeup per burst instead of one per event: this is what a writer that
        pushes to a socket should use. It returns without yielding to the event loop
        when events are already queued, and returns an empty list when
        :meth:`interrupt` ends the wait. Raises ChatcoreClosed like :meth:`receive`.
        """
        if not self._queue:
            await self._wait_once()
        events, self._queue = self._queue, []
        if events:
            self._hub._taken(events[0])
        return events

    def take_nowait(self) -> list[Event]:
        """Every queued event, oldest first, without waiting (``[]`` if none): what a
        writer that flushes once per loop iteration takes. Raises ChatcoreClosed once
        the connection has ended; what was still queued then is dropped (the writer
        closes the socket instead, and is not woken again to take it)."""
        events, self._queue = self._queue, []
        self._check_open()
        if events:
            self._hub._taken(events[0])
        return events

    @property
    def waiting(self) -> bool:
        """Whether a task waits in :meth:`receive` or :meth:`receive_many`."""
        return self._wakeup is not None

    def interrupt(self) -> bool:
        """End a :meth:`receive_many` that waits (it returns ``[]``); whether one did."""
        if self._wakeup is None:
            return False
        self._wakeup.set()
        self._wakeup = None
        return True

    def when_ready(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` when an event is queued (or the connection ends) and no
        task waits for it, so a writer that stopped while idle can be started again.

        It is called synchronously from the dispatcher: it must not block or raise.
        """
        self._ready = callback

    def receive_nowait(self) -> Event | None:
        """The next queued event or None; raises ChatcoreClosed once closed and drained."""
        if self._queue:
            return self._queue.pop(0)
        self._check_open()
        return None

    def _check_open(self) -> None:
        if self._ended:
            raise ChatcoreClosed(f"connection closed: {self.close_reason}")

    async def _wait_once(self) -> None:
        """Wait for an event, the end or an interrupt (called with nothing queued);
        raises ChatcoreClosed when the connection has ended and nothing is queued."""
        self._check_open()
        wakeup = self._wakeup = self._hub._new_event()
        await wakeup.wait()
        if not self._queue:
            self._check_open()

    def _wake(self) -> None:
        if not self.interrupt() and self._ready is not None:
            self._ready()

    def _offer(self, event: Event) -> bool:
        if self._ended:
            return True
        if len(self._queue) >= self._queue_size:
            return False
        self._queue.append(event)
        self._wake()
        return True

    def _end(self, reason: CloseReason) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._ended = True
        self._wake()

    async def aclose(self) -> None:
        """Close and unregister the connection. Idempotent."""
        await self._hub.close(self)

    async def __aenter__(self) -> LocalConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ConnectionHub:
    """Holds this gateway's connections and routes bus events to them."""

    def __init__(
        self,
        gateway_id: str,
        bus: GatewayBus,
        registry: ConnectionRegistry,
        presence: PresenceStore,
        *,
        queue_size: int = 1024,
        heartbeat_s: float = 30.0,
        ttl_s: float = 60.0,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
        lag: DeliveryLag | None = None,
    ) -> None:
        """``queue_size``: events a connection may have waiting before it counts as a
        slow consumer. ``heartbeat_s``/``ttl_s``: how often registrations and presence
        are refreshed, and how long they live without a refresh (raises InvalidRequest
        unless ``heartbeat_s < ttl_s``, see :class:`PresenceRules`). ``lag`` is told,
        each time a connection's writer takes its queued events (:meth:`LocalConnection.
        receive_many`, :meth:`LocalConnection.take_nowait`), how long after its
        acceptance (``clock``, wall milliseconds) the oldest of them is taken."""
        self.gateway_id = gateway_id
        self.clock = clock
        self.lag = lag
        self._bus = bus
        self._registry = registry
        self.presence = PresenceTracker[LocalConnection](
            presence,
            rules=PresenceRules(ttl_s=ttl_s, heartbeat_s=heartbeat_s),
            clock=clock,
            telemetry=telemetry,
        )
        self._queue_size = queue_size
        self.heartbeat_s = heartbeat_s
        self.ttl_s = ttl_s
        self._conns: dict[str, LocalConnection] = {}
        self.slow_consumers = 0
        self._event_type: type[anyio.Event] | None = None
        self.members_removed: (
            Callable[[ChatEvent, list[LocalConnection]], Awaitable[None]] | None
        ) = None
        """Called with a ``chat`` event that took members out and its local target
        connections, before the event is queued for them; ChatNode re-checks presence
        watches there."""

    def _taken(self, event: Event) -> None:
        """A connection's writer took ``event`` (and what was queued after it) to send:
        tell ``lag`` how long after its acceptance, if it is a message."""
        lag = self.lag
        if lag is not None and isinstance(event, MessageEvent):
            now = self.clock()
            lag.observe(now - event.message.ts, now)

    def _new_event(self) -> anyio.Event:
        # anyio.Event() looks up the running backend on every call; a connection
        # waits once per burst of events, so make the backend's Event directly.
        if self._event_type is None:
            event = anyio.Event()
            self._event_type = type(event)
            return event
        return self._event_type()

    @property
    def connections(self) -> list[LocalConnection]:
        return list(self._conns.values())

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Route bus events and presence changes, and heartbeat, until cancelled."""
        try:
            async with (
                self._bus.subscribe(self.gateway_id) as envelopes,
                anyio.create_task_group() as tg,
            ):
                await tg.start(self.presence.run, self._tell_watchers)
                tg.start_soon(self._refresh_registrations)
                task_status.started()
                async for data in envelopes:
                    try:
                        batch = decode_envelopes(data)
                    except msgspec.DecodeError:
                        logger.error("dropping an undecodable bus payload")
                        continue
                    for i, envelope in enumerate(batch, 1):
                        event = envelope.event
                        if isinstance(event, ChatEvent) and event.removed:
                            await self._chat_changed(event, envelope.conns)
                        await self._deliver(envelope.conns, event)
                        if i % _YIELD_EVERY == 0:  # let the writers flush meanwhile
                            await anyio.lowlevel.checkpoint()
        finally:
            with anyio.CancelScope(shield=True):
                await self.shutdown()

    def dispatch(self, conn_ids: Iterable[str], event: Event) -> list[LocalConnection]:
        """Queue ``event`` for the named local connections; returns the slow ones
        (their queue was full), which the caller must :meth:`close`."""
        slow = []
        for conn_id in conn_ids:
            conn = self._conns.get(conn_id)
            if conn is not None and not conn._offer(event):
                self.slow_consumers += 1
                conn._end("slow_consumer")
                self._forget(conn)
                slow.append(conn)
        return slow

    async def open(self, user: str, device: str) -> LocalConnection:
        """Register a new device connection of ``user`` on this gateway."""
        info = Connection(
            user, device, self.gateway_id, f"{self.gateway_id}.{secrets.token_hex(8)}"
        )
        conn = LocalConnection(self, info, self._queue_size)
        self._conns[info.conn_id] = conn
        await self._registry.register(info, ttl_s=self.ttl_s)
        await self.presence.arrive(user, device)
        return conn

    async def close(self, conn: LocalConnection, reason: CloseReason = "closed") -> None:
        """Unregister a connection; the user goes offline with their last device."""
        conn._end(reason)
        self._forget(conn)
        if conn._unregistered:
            return
        conn._unregistered = True
        with anyio.CancelScope(shield=True):
            await self._registry.unregister(conn.info)
            await self.presence.depart(conn.user, conn.device)

    def _forget(self, conn: LocalConnection) -> None:
        self.presence.forget(conn)
        self._conns.pop(conn.info.conn_id, None)

    def watch_presence(self, conn: LocalConnection, users: Iterable[str]) -> None:
        """Queue a presence event on ``conn`` for each change of ``users``."""
        self.presence.watch(conn, users)

    def unwatch_presence(self, conn: LocalConnection, users: Iterable[str]) -> None:
        self.presence.unwatch(conn, users)

    async def shutdown(self) -> None:
        """Close every connection ("going away") and drop this gateway's registrations."""
        for conn in list(self._conns.values()):
            await self.close(conn, "shutdown")
        await self._registry.drop_gateway(self.gateway_id)

    async def _refresh_registrations(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_s)
            conns = [conn.info for conn in self._conns.values()]
            if conns:  # one call for every connection: pipelined by the registry
                await self._registry.register_many(conns, ttl_s=self.ttl_s)

    async def _chat_changed(self, event: ChatEvent, conn_ids: Iterable[str]) -> None:
        if self.members_removed is None:
            return
        conns = [c for c in map(self._conns.get, conn_ids) if c is not None]
        try:
            await self.members_removed(event, conns)
        except Exception:
            logger.exception("re-checking presence watches of chat %s", event.chat.chat_id)

    async def _tell_watchers(self, state: PresenceState, watchers: list[LocalConnection]) -> None:
        await self._deliver([c.info.conn_id for c in watchers], PresenceEvent((state,)))

    async def _deliver(self, conn_ids: Iterable[str], event: Event) -> None:
        for slow in self.dispatch(conn_ids, event):
            await self.close(slow, "slow_consumer")
