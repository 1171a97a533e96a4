"""The simulated cluster: processes running ChatNodes, clients, the workload, the checks.

One :class:`World` is one run of one seed. Everything it does is ordered by one
``random.Random(seed)`` and the deterministic loop of :mod:`chatcore.sim._loop`, so a
seed replays bit for bit; :attr:`World.trace` records what happened, and its hash
proves two runs identical.

A run has three phases:

1. **setup**, without faults: the shared memory backends open, the processes start
   (each a full ChatNode: gateway, Router, Sequencer and workers, sharing consumer
   groups), and the chats are created;
2. **chaos**: every client sends its messages and receipts while the injector fails,
   delays, duplicates and drops calls and crashes processes (which restart);
3. **heal**: faults stop, every process comes back, the pipeline settles, every
   client reconnects and syncs until it holds every chat to its end; then the
   final invariants are checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

import chatcore.node
import chatcore.pipeline.hub
from chatcore.backends import Backends
from chatcore.client._state import Fill, Outbox, ReceiptOutbox, Timelines
from chatcore.errors import ChatcoreError
from chatcore.events import MessageEvent
from chatcore.gateway.convert import message_frame
from chatcore.model import ChatInfo, StoredMessage
from chatcore.node import ALL_ROLES, ChatNode, NodeOptions, Role
from chatcore.protocol import Message, ReceiptStatus, Send
from chatcore.registry.memory import MemoryConnectionRegistry
from chatcore.sim._faults import Faults, Injector, ProcessCrashed, proxy_port
from chatcore.sim._loop import VirtualClock

__all__ = ["Process", "SimConfig", "SimFailure", "World"]

_PORTS = (
    "log",
    "messages",
    "receipts",
    "membership",
    "presence",
    "registry",
    "bus",
    "cache",
    "offline",
    "push",
    "leases",
)

HOME, REMOTE = "home", "remote"
"""The regions of a two-region run: the pipeline and the backends are at home."""

FAILURES = (ChatcoreError, TimeoutError)
"""What a client treats as a broken connection: reconnect and retry."""


class SimFailure(AssertionError):
    """An invariant did not hold (or the run could not finish)."""


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """The shape of a run; ``None`` fields are drawn from the seed."""

    nodes: int | None = None
    """Processes, each a full ChatNode (1..3 when drawn)."""
    users: int | None = None
    """Users, one client each (2..5 when drawn)."""
    partitions: int | None = None
    """Partitions of the log topics (1, 2 or 4 when drawn)."""
    messages: int = 10
    """Messages each client sends."""
    faults: Faults = field(default_factory=Faults)
    chaos_limit_s: float = 600.0
    """Virtual seconds the chaos phase may take before the run fails as stuck."""
    heal_limit_s: float = 300.0
    """Virtual seconds the heal phase may take."""
    regions: int = 1
    """1, or 2: a second region whose gateways reach the home region's pipeline and
    backends over a WAN (docs/regions.md, "what chatcore supports today")."""
    wan_rtt_s: float = 0.1
    """The round trip between the two regions (virtual seconds)."""

    def __post_init__(self) -> None:
        if self.regions not in (1, 2):
            raise ValueError(f"regions is 1 or 2, not {self.regions}")
        if not self.wan_rtt_s >= 0:
            raise ValueError(f"wan_rtt_s must be >= 0, not {self.wan_rtt_s}")


@dataclass(eq=False)
class Process:
    """One simulated server process; ``generation`` counts its restarts."""

    world: World
    name: str
    region: str = HOME
    rtt_s: float = 0.0
    """What each of its port calls pays on top: the round trip to the home region."""
    alive: bool = False
    generation: int = 0
    roles: frozenset[Role] = ALL_ROLES
    node: ChatNode | None = None
    scope: anyio.CancelScope | None = None
    up: anyio.Event = field(default_factory=anyio.Event)

    def crash(self) -> None:
        self.alive = False
        self.node = None
        if self.up.is_set():
            self.up = anyio.Event()
        if self.scope is not None:
            self.scope.cancel()

    def backends(self, shared: Backends) -> Backends:
        ports = {
            name: proxy_port(name, getattr(shared, name), self, self.generation) for name in _PORTS
        }
        return Backends(**ports)


class _Ids:
    """Deterministic stand-in for ``secrets`` in the modules that name things at random."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def token_hex(self, nbytes: int = 8) -> str:
        return self._rng.randbytes(nbytes).hex()


class World:
    """One run of one seed."""

    session_timeout_s = 3.0
    """How long a crashed process's consumers keep their partitions."""

    def __init__(self, seed: int, config: SimConfig, clock: VirtualClock) -> None:
        self.seed = seed
        self.config = config
        self.clock = clock
        self.rng = random.Random(seed)
        self.faults = config.faults
        self.chaos = False
        self.trace: list[str] = []
        self._hash = hashlib.sha256()
        self.violations: list[str] = []
        self.injector = Injector(self)
        rng = self.rng
        n_nodes = config.nodes or rng.randint(1, 3)
        n_users = config.users or rng.randint(2, 5)
        self.partitions = config.partitions or rng.choice([1, 2, 4])
        self.users = [f"u{i}" for i in range(n_users)]
        self.procs = [Process(self, f"p{i}") for i in range(n_nodes)]
        for proc in self.procs[1:]:  # p0 runs everything; the others a share, or all
            if rng.random() < 0.5:
                proc.roles = frozenset(r for r in sorted(ALL_ROLES) if rng.random() < 0.5)
                proc.roles = proc.roles or frozenset({"gateway"})
        self.regions = (HOME, REMOTE) if config.regions == 2 else (HOME,)
        self.wan_rtt_s = config.wan_rtt_s
        if config.regions == 2:
            self._second_region(rng)
        self.clients: list[Client] = []
        self.chats: list[ChatInfo] = []
        self.canonical: dict[tuple[str, int], tuple[str, str]] = {}
        """(chat, seq) → (sender, client_msg_id), as first delivered to any client."""
        self._tg: anyio.abc.TaskGroup | None = None
        self.shared = Backends.in_memory()
        self.shared.registry = MemoryConnectionRegistry(clock=lambda: self.clock.now)
        self.note(
            f"seed {seed}: {n_nodes} processes, {n_users} users, {self.partitions} partitions"
        )
        for proc in self.procs:
            where = f" in {proc.region}" if config.regions == 2 else ""
            self.note(f"{proc.name}{where} runs {sorted(proc.roles)}")
        self.latency: dict[tuple[str, str], list[float]] = {}
        """(what, where) → virtual seconds: ``accepted`` by the sender's region (send →
        ack), ``delivered`` by ``"sender region->member region"`` (send → the member's
        gateway connection, while the workload runs)."""
        self.sent_at: dict[tuple[str, str], float] = {}
        self._arrivals: set[tuple[str, str, str, str]] = set()

    def _second_region(self, rng: random.Random) -> None:
        """Gateways in a remote region: at least one, and one more at home sometimes.

        The pipeline (Router, Sequencer, workers) and every backend stay at home; a
        remote gateway's every port call pays the WAN round trip, and a bus publish
        to it arrives half a round trip later.
        """
        if len(self.procs) < 2:
            self.procs.append(Process(self, f"p{len(self.procs)}"))
        for i, proc in enumerate(self.procs[1:], 1):
            if i % 2 == 1 or i == len(self.procs) - 1:
                proc.region, proc.rtt_s = REMOTE, self.config.wan_rtt_s
                proc.roles = frozenset({"gateway"})

    def region_of(self, gateway: str) -> str:
        for proc in self.procs:
            if proc.name == gateway:
                return proc.region
        return HOME

    def measure(self, what: str, region: str, seconds: float) -> None:
        self.latency.setdefault((what, region), []).append(seconds)

    # -- trace ------------------------------------------------------------------

    def note(self, line: str) -> None:
        entry = f"{self.clock.now:10.4f} {line}"
        self.trace.append(entry)
        self._hash.update(entry.encode())
        self._hash.update(b"\n")

    @property
    def trace_hash(self) -> str:
        return self._hash.hexdigest()

    def violate(self, what: str) -> None:
        self.note(f"VIOLATION {what}")
        self.violations.append(what)

    def later(self, delay_s: float, fn: Callable[[], Awaitable[Any]]) -> None:
        """Run ``fn`` after ``delay_s`` virtual seconds (a crashed member leaving)."""
        assert self._tg is not None

        async def run() -> None:
            await anyio.sleep(delay_s)
            await fn()

        self._tg.start_soon(run)

    # -- the run ----------------------------------------------------------------

    async def run(self) -> None:
        modules = (chatcore.pipeline.hub, chatcore.node)
        saved = [getattr(module, "secrets") for module in modules]  # noqa: B009
        for module in modules:
            setattr(module, "secrets", _Ids(self.rng))  # noqa: B010
        try:
            await self._run()
        finally:
            for module, original in zip(modules, saved, strict=True):
                setattr(module, "secrets", original)  # noqa: B010

    async def _run(self) -> None:
        cfg = self.config
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for name in _PORTS:
                await getattr(self.shared, name).__aenter__()
            for proc in self.procs:
                tg.start_soon(self._process, proc)
            for proc in self.procs:
                await proc.up.wait()
            await self._create_chats()
            regions = self.regions
            self.clients = [
                Client(self, user, regions[i % len(regions)]) for i, user in enumerate(self.users)
            ]
            self.note("chaos begins")
            self.chaos = True
            with anyio.move_on_after(cfg.chaos_limit_s) as chaos:
                async with anyio.create_task_group() as clients:
                    for client in self.clients:
                        clients.start_soon(client.run_workload)
                    if self.faults.kill_every_s:
                        tg.start_soon(self._kill_now_and_then)
            self.chaos = False
            if chaos.cancelled_caught:
                self.violate(f"the workload did not finish within {cfg.chaos_limit_s} s")
            self.note("heal begins")
            with anyio.move_on_after(cfg.heal_limit_s) as heal:
                await self._heal()
            if heal.cancelled_caught:
                self.violate(f"the cluster did not heal within {cfg.heal_limit_s} s")
            else:
                await self._check_final()
            self.note(f"end: {len(self.violations)} violations")
            tg.cancel_scope.cancel()

    async def _kill_now_and_then(self) -> None:
        """Kill a random live process every so often, wherever its tasks wait."""
        while self.chaos:
            await anyio.sleep(round(self.rng.expovariate(1 / self.faults.kill_every_s), 4))
            live = [p for p in self.procs if p.alive]
            if self.chaos and live:
                proc = self.rng.choice(live)
                self.note(f"CRASH {proc.name} (killed)")
                proc.crash()

    async def _process(self, proc: Process) -> None:
        """Run ``proc``'s node, and start it again after every crash."""
        opts = NodeOptions(
            roles=proc.roles,
            partitions=self.partitions,
            gateway_id=proc.name,
            membership_cache_ttl_s=0,
            restart_backoff_s=0.2,
        )
        while True:
            proc.generation += 1
            proc.alive = True
            started = False
            with anyio.CancelScope() as scope:
                proc.scope = scope
                try:
                    async with self._node(proc, opts) as node:
                        proc.node, started = node, True
                        self.note(f"{proc.name} up (run {proc.generation})")
                        proc.up.set()
                        await anyio.sleep_forever()
                except Exception as exc:
                    if started:  # stages are supervised: nothing may escape a running node
                        self.violate(f"{proc.name} died of {exc!r}")
                    else:  # failed to start (an injected fault)
                        self.note(f"{proc.name} failed to start: {type(exc).__name__}")
            proc.crash()
            await anyio.sleep(round(self.rng.uniform(0.1, 2.0), 3))

    def _node(self, proc: Process, opts: NodeOptions) -> ChatNode:
        """A node of ``proc`` over its proxies, on the virtual clock where it would read
        the real monotonic one (bound as a default argument, so not patched)."""
        node = ChatNode(proc.backends(self.shared), opts)
        if node.backpressure is not None:
            node.backpressure._clock = lambda: self.clock.now
        return node

    async def _create_chats(self) -> None:
        node = self.node_of(self.procs[0])
        assert node is not None
        users, rng = self.users, self.rng
        self.chats.append(await node.create_chat(users[0], kind="direct", members=[users[1]]))
        for g in range(rng.randint(1, 2)):
            k = len(users) if g == 0 else rng.randint(2, len(users))
            members = rng.sample(users, k=k)  # the first group has every user
            chat = await node.create_chat(
                members[0], kind="group", members=members[1:], title=f"g{g}"
            )
            self.chats.append(chat)
        for chat in self.chats:
            self.note(
                f"chat {self.name(chat.chat_id)} = {chat.chat_id} members {list(chat.members)}"
            )

    def name(self, chat_id: str) -> str:
        """A short name of a chat for the trace (``c0``, ``c1``, ...)."""
        return f"c{[c.chat_id for c in self.chats].index(chat_id)}"

    def node_of(self, proc: Process) -> ChatNode | None:
        return proc.node if proc.alive else None

    def pick_node(self, region: str = HOME) -> tuple[Process, ChatNode] | None:
        """A live gateway process, chosen at random, and its node: one in ``region``
        if any is up (a client's nearest), else any."""
        live = [p for p in self.procs if p.alive and p.node and "gateway" in p.roles]
        near = [p for p in live if p.region == region]
        live = near or live
        if not live:
            return None
        proc = self.rng.choice(live)
        assert proc.node is not None
        return proc, proc.node

    async def _heal(self) -> None:
        for proc in self.procs:
            while not (proc.alive and proc.node is not None):
                await proc.up.wait()
        self.note("every process is up")
        await self._settled()
        for client in self.clients:  # what the chaos left unsent
            await client.flush_fully()
        await self._settled()
        self.note("the pipeline has settled")
        for client in self.clients:
            await client.catch_up_fully()
        self.note("every client has caught up")
        await self._settled()

    async def _settled(self) -> None:
        proc = self.procs[0]
        while True:
            node = self.node_of(proc)
            if node is not None:
                try:
                    await node.settled(timeout_s=60)
                    return
                except FAILURES as exc:
                    self.note(f"not settled: {exc}")
            await anyio.sleep(0.1)

    # -- checks -----------------------------------------------------------------

    def arrived(self, client: Client, m: Message, at: float) -> None:
        """A live delivery reached ``client``'s gateway connection at ``at``: measured
        (the first copy, while the workload runs) from when its sender first sent it."""
        key = (client.user, m.chat, m.sender, m.client_msg_id)
        sent = self.sent_at.get((m.sender, m.client_msg_id))
        if sent is None or m.sender == client.user or not self.chaos or key in self._arrivals:
            return
        self._arrivals.add(key)
        route = f"{self.clients[self.users.index(m.sender)].region}->{client.region}"
        self.measure("delivered", route, at - sent)

    def delivered(self, client: Client, m: Message) -> None:
        """Continuous check: every member sees the same message at each (chat, seq)."""
        key = (m.chat, m.seq)
        mine = (m.sender, m.client_msg_id)
        first = self.canonical.setdefault(key, mine)
        if first != mine:
            self.violate(f"{client.user} got {mine} at {key}, another member got {first}")
        earlier = client.seen.setdefault((m.chat, *mine), m.seq)
        if earlier != m.seq:
            self.violate(
                f"{client.user} got {mine} twice in {self.name(m.chat)}: seq {earlier}, {m.seq}"
            )

    async def _check_final(self) -> None:
        store = self.shared.messages
        node = self.node_of(self.procs[0])
        assert node is not None
        acked = {(c.user, cmid) for c in self.clients for cmid in c.acked}
        planned = {(c.user, cmid): c for c in self.clients for cmid in c.planned}
        for chat in self.chats:
            cid = chat.chat_id
            stored: list[StoredMessage] = []
            while True:
                page = await store.range(cid, after=len(stored), limit=200)
                if not page:
                    break
                stored.extend(page)
            last = await store.last_seq(cid)
            seqs = [m.seq for m in stored]
            if seqs != list(range(1, len(stored) + 1)) or last != len(stored):
                self.violate(f"chat {self.name(cid)}: seqs {seqs} not contiguous (last_seq {last})")
            keys = [(m.sender, m.client_msg_id) for m in stored]
            for key in sorted(set(keys)):
                if keys.count(key) > 1:
                    self.violate(f"chat {self.name(cid)}: {key} stored {keys.count(key)} times")
                if key not in planned:
                    self.violate(f"chat {self.name(cid)}: {key} stored but never sent")
            for user in chat.members:
                mine = [cmid for sender, cmid in keys if sender == user]
                client = self.clients[self.users.index(user)]
                for cmid in client.sent_to[cid]:
                    if (user, cmid) in acked and cmid not in mine:
                        self.violate(
                            f"chat {self.name(cid)}: acknowledged {user}:{cmid} not stored"
                        )
                order = [c for c in client.sent_to[cid] if c in mine]
                if order != sorted(set(mine), key=mine.index):
                    self.violate(f"chat {self.name(cid)}: {user}'s messages stored as {mine}")
                view = [(m.sender, m.client_msg_id) for m in client.views[cid]]
                if view != keys:
                    self.violate(f"chat {self.name(cid)}: {user} holds {view}, the store {keys}")
            for user in chat.members:
                await self._check_receipts(node, chat, user, len(stored))

    async def _check_receipts(self, node: ChatNode, chat: ChatInfo, user: str, last: int) -> None:
        client = self.clients[self.users.index(user)]
        cid = chat.chat_id
        (state,) = [s for s in await node.chats(user) if s.chat.chat_id == cid]
        where = f"chat {self.name(cid)} {user}"
        if not state.read_seq <= state.delivered_seq <= state.last_seq:
            self.violate(
                f"{where}: read {state.read_seq} delivered {state.delivered_seq} "
                f"last {state.last_seq}"
            )
        if state.unread != state.last_seq - state.read_seq or state.last_seq != last:
            self.violate(f"{where}: unread {state.unread} with {state} and {last} stored")
        own = max((m.seq for m in client.views[cid] if m.sender == user), default=0)
        marks: list[tuple[ReceiptStatus, int]] = [
            ("read", state.read_seq),
            ("delivered", state.delivered_seq),
        ]
        for status, mark in marks:
            acked = client.receipts_acked.get((cid, status), 0)
            tried = max(client.receipts_tried.get((cid, status), 0), own)
            if status == "delivered":
                tried = max(tried, client.receipts_tried.get((cid, "read"), 0))
            if not acked <= mark <= max(tried, acked):
                self.violate(f"{where}: {status} {mark}, acknowledged {acked}, sent {tried}")


class Client:
    """A user's device: the SDK's pure state (Timelines, Outbox, ReceiptOutbox) driven
    against a randomly chosen live gateway, reconnecting and syncing after any failure."""

    def __init__(self, world: World, user: str, region: str = HOME) -> None:
        self.world = world
        self.user = user
        self.region = region
        self.timelines = Timelines(backfill_limit=None)
        self.outbox = Outbox()
        self.receipts = ReceiptOutbox()
        self.my_chats = [c.chat_id for c in world.chats if user in c.members]
        for cid in self.my_chats:
            self.timelines.track(cid)
        self.views: dict[str, list[Message]] = {c.chat_id: [] for c in world.chats}
        self.seen: dict[tuple[str, str, str], int] = {}
        """(chat, sender, client_msg_id) → the seq it was delivered at."""
        self.sent_to: dict[str, list[str]] = {c.chat_id: [] for c in world.chats}
        self.planned: list[str] = []
        self.acked: set[str] = set()
        self.receipts_acked: dict[tuple[str, ReceiptStatus], int] = {}
        self.receipts_tried: dict[tuple[str, ReceiptStatus], int] = {}
        self.epoch = 0
        self.request_ids = 0
        self.proc: Process | None = None
        self.node: ChatNode | None = None
        self.conn: Any = None
        self.inbox: list[tuple[float, Any]] = []
        """Events the connection queued while the client was busy, with their arrival."""

    def note(self, line: str) -> None:
        self.world.note(f"{self.user} {line}")

    # -- connection ---------------------------------------------------------------

    async def connect(self) -> bool:
        picked = self.world.pick_node(self.region)
        if picked is None:
            return False
        proc, node = picked
        self.epoch += 1
        self.note(f"connects to {proc.name}")
        try:
            conn = self.conn = await node.open_connection(self.user, "d0")
            conn.when_ready(lambda: self._arrived(conn))
            self.proc, self.node = proc, node
            await self.flush()  # the SDK retransmits at once, while it catches up
            await self.catch_up()
        except FAILURES as exc:
            await self.disconnect(exc)
            return False
        return True

    async def disconnect(self, exc: BaseException) -> None:
        self.note(f"disconnects: {type(exc).__name__}")
        conn, self.conn, self.node, self.proc = self.conn, None, None, None
        self.inbox = []
        self.epoch += 1
        if conn is not None:
            with contextlib.suppress(*FAILURES):
                await conn.aclose()

    def _check_node(self) -> ChatNode:
        if self.node is None or self.proc is None or not self.proc.alive:
            raise ProcessCrashed("the gateway is gone")
        return self.node

    # -- receiving ----------------------------------------------------------------

    def offer(self, m: StoredMessage, arrived: float | None = None) -> None:
        """Take ``m`` (live at ``arrived``, or from sync or history)."""
        frame = message_frame(m)
        if arrived is not None:
            self.world.arrived(self, frame, arrived)
        if self.timelines.offer(frame):
            for ready in self.timelines.drain_ready():
                self.views[ready.chat].append(ready)
                self.world.delivered(self, ready)

    async def catch_up(self) -> bool:
        """Sync, then fill every gap from history; whether the client holds every chat
        to the end the sync reported."""
        node = self._check_node()
        cursors = {cid: self.timelines.cursor(cid) for cid in self.my_chats}
        result = await node.sync(self.user, cursors)
        for m in result.messages:
            self.offer(m)
        for state in result.chats:
            self.timelines.observe(state.chat.chat_id, state.last_seq)
        for cid in sorted(self.timelines.gaps()):
            while True:
                fill = self.timelines.next_fill(cid, page=50)
                if not isinstance(fill, Fill) or fill.limit < 1:
                    break
                page = await node.history(self.user, cid, after=fill.after, limit=fill.limit)
                if not page.messages:
                    break  # the store lags the log: try again later
                for m in page.messages:
                    self.offer(m)
        return not self.timelines.behind()

    def _arrived(self, conn: Any) -> None:
        """``conn`` queued events while nobody waited on it (the client was busy
        sending): take them now, with the time they reached the device's gateway."""
        if conn is not self.conn:
            return  # called as it ends, after the client left it
        with contextlib.suppress(ChatcoreError):
            while (event := conn.receive_nowait()) is not None:
                self.inbox.append((self.world.clock.now, event))

    async def receive(self, timeout_s: float) -> None:
        if not self.inbox:
            with anyio.move_on_after(timeout_s):
                events = await self.conn.receive_many()
                self.inbox = [(self.world.clock.now, e) for e in events]
        for arrived, event in self.inbox:
            if isinstance(event, MessageEvent):
                self.offer(event.message, arrived)
        self.inbox = []
        if self.timelines.gaps():
            await self.catch_up()

    # -- sending ----------------------------------------------------------------

    async def flush(self) -> None:
        """Send what the outbox holds, oldest first, then the waiting receipts."""
        node = self._check_node()
        while (pending := self.outbox.next_due(self.epoch)) is not None:
            self.request_ids += 1
            frame = self.outbox.transmit(
                pending.frame.client_msg_id, epoch=self.epoch, request_id=self.request_ids
            )
            started = self.world.clock.now
            self.world.sent_at.setdefault((self.user, frame.client_msg_id), started)
            await node.send(
                self.user,
                frame.chat,
                client_msg_id=frame.client_msg_id,
                body=frame.body,
                retry=frame.retry,
            )
            self.world.measure("accepted", self.region, self.world.clock.now - started)
            self.outbox.remove(frame.client_msg_id)
            self.acked.add(frame.client_msg_id)
            self.note(f"acked {frame.client_msg_id}")
        waiting = self.receipts.take()
        for i, (cid, status, seq) in enumerate(waiting):
            try:
                await node.receipt(self.user, cid, status, seq)
            except BaseException:
                for later in waiting[i:]:
                    self.receipts.put(*later)
                raise
            key = (cid, status)
            self.receipts_acked[key] = max(self.receipts_acked.get(key, 0), seq)
            self.note(f"receipt {status} {self.world.name(cid)} {seq} acked")

    def queue_receipt(self, cid: str, status: ReceiptStatus, seq: int) -> None:
        key = (cid, status)
        self.receipts_tried[key] = max(self.receipts_tried.get(key, 0), seq)
        self.receipts.put(cid, status, seq)

    def plan_next(self) -> None:
        rng = self.world.rng
        cid = rng.choice(self.my_chats)
        cmid = f"{self.user}-{len(self.planned)}"
        self.planned.append(cmid)
        self.sent_to[cid].append(cmid)
        self.outbox.add(Send(id=0, chat=cid, client_msg_id=cmid, kind="text", body=cmid))
        self.note(f"sends {cmid} to {self.world.name(cid)}")

    def act(self) -> None:
        """One random thing a user does: write a message or mark chats delivered / read."""
        rng = self.world.rng
        x = rng.random()
        if x < 0.5 and len(self.planned) < self.world.config.messages:
            self.plan_next()
        elif x < 0.8:
            cid = rng.choice(self.my_chats)
            cursor = self.timelines.cursor(cid)
            status: ReceiptStatus = "read" if rng.random() < 0.5 else "delivered"
            if cursor:
                self.queue_receipt(cid, status, rng.randint(1, cursor))

    def done(self) -> bool:
        return len(self.planned) >= self.world.config.messages and not self.outbox

    async def run_workload(self) -> None:
        rng = self.world.rng
        while not self.done():
            if self.conn is None and not await self.connect():
                await anyio.sleep(round(rng.uniform(0.05, 1.0), 3))
                continue
            try:
                await anyio.sleep(round(rng.uniform(0.0, 0.2), 3))
                await self.receive(round(rng.uniform(0.0, 0.5), 3))
                self.act()
                await self.flush()
            except FAILURES as exc:
                await self.disconnect(exc)
                await anyio.sleep(round(rng.uniform(0.05, 1.0), 3))
        if self.world.config.regions == 2:  # measure what the others still send
            await self.linger()
        if self.conn is not None:
            await self.disconnect(ProcessCrashed("workload done"))

    async def linger(self) -> None:
        """Stay connected and receive until every client's workload is done."""
        rng = self.world.rng
        while not all(c.done() for c in self.world.clients):
            if self.conn is None and not await self.connect():
                await anyio.sleep(round(rng.uniform(0.05, 1.0), 3))
                continue
            try:
                await self.receive(0.5)
            except FAILURES as exc:
                await self.disconnect(exc)

    async def flush_fully(self) -> None:
        """After the chaos: reconnect until every send and receipt has reached the server."""
        while self.outbox or self.receipts:
            if self.conn is None and not await self.connect():
                await anyio.sleep(0.1)
                continue
            try:
                await self.flush()
            except FAILURES as exc:
                await self.disconnect(exc)
                await anyio.sleep(0.1)

    async def catch_up_fully(self) -> None:
        """After the heal: reconnect and sync until every chat is held to its end."""
        while True:
            if self.conn is None and not await self.connect():
                await anyio.sleep(0.1)
                continue
            try:
                if await self.catch_up():
                    return
            except FAILURES as exc:
                await self.disconnect(exc)
            await anyio.sleep(0.1)
