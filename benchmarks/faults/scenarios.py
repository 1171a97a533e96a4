"""The fault scenarios: each starts the real processes, injects one fault, and measures.

Every scenario returns an :class:`Outcome`: the figures it measured, the criterion it
is held to, and whether the figures meet it. A scenario never raises for a failed
criterion (a nonzero lost count is a finding to report, not a crash); it raises
FaultFailed only when it could not run at all. Each one runs under a hard time bound
(``Sizes.bound_s``, applied by the runner).
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from benchmarks.faults.ledger import Ledger, Tally, tally
from benchmarks.faults.stack import Services, Stack, running
from chatcore.client import ChatClient, ClientOptions, MessageReceived
from chatcore.errors import ChatcoreError

__all__ = [
    "running",
    "Context",
    "Outcome",
    "Sizes",
    "gateway_restart",
    "kafka_kill",
    "reconnect_cut",
    "redis_loss",
]


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs: the full figures, or the CI smoke."""

    senders: int = 50
    """Senders of the Kafka kill."""
    rate_per_sender: float = 5.0
    cut_messages: int = 500
    group_members: int = 256
    half_open: int = 1000
    soak_s: float = 300.0
    soak_connections: int = 2000

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(
            senders=6,
            cut_messages=60,
            group_members=16,
            half_open=50,
            soak_s=10.0,
            soak_connections=50,
        )


@dataclass
class Context:
    services: Services
    workdir: Path
    sizes: Sizes = field(default_factory=Sizes)

    def stack(self, name: str, **kw: Any) -> Stack:
        """A stack in a fresh folder of its own (its own SQLite store)."""
        stack = Stack(self.services, self.workdir, **kw)
        stack.workdir = self.workdir / f"{name}-{stack.tag}"
        return stack


@dataclass
class Outcome:
    """What one scenario measured."""

    name: str
    fault: str
    criterion: str
    figures: dict[str, Any] = field(default_factory=dict)
    passed: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fault": self.fault,
            "criterion": self.criterion,
            "figures": self.figures,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
        }


# ---------------------------------------------------------------- helpers

SEND_TIMEOUT_S = 30.0


def _options(**kw: Any) -> ClientOptions:
    base: dict[str, Any] = {
        "connect_timeout_s": 30.0,
        "send_timeout_s": SEND_TIMEOUT_S,
        "request_timeout_s": 30.0,
        "backoff_initial_s": 0.2,
        "backoff_max_s": 2.0,
    }
    base.update(kw)
    return ClientOptions(**base)


@dataclass
class Senders:
    """Clients that send numbered messages, one at a time each, into the ledger."""

    ledger: Ledger = field(default_factory=Ledger)
    stop: anyio.Event = field(default_factory=anyio.Event)
    first_error_at: float | None = None
    last_error_at: float | None = None
    timeout_s: float = SEND_TIMEOUT_S + 5
    """Longest wait for one send's answer (the client's own send timeout comes first)."""
    ack_times: list[float] = field(default_factory=list)
    error_times: list[float] = field(default_factory=list)

    def longest_ack_gap(self, after: float = 0.0) -> float:
        """The longest stretch without any ack, from ``after`` on (seconds)."""
        times = sorted(t for t in self.ack_times if t >= after)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    async def run(
        self, client: ChatClient, user: str, chat: str, *, rate: float, limit: int | None = None
    ) -> None:
        i = 0
        while not self.stop.is_set() and (limit is None or i < limit):
            cmid = f"{user}-{i}"
            i += 1
            self.ledger.sent(chat, user, cmid)
            started = time.monotonic()
            try:
                with anyio.fail_after(self.timeout_s):
                    ack = await client.send(chat, f"m {cmid}", client_msg_id=cmid)
            except (ChatcoreError, TimeoutError) as exc:
                now = time.monotonic()
                self.first_error_at = self.first_error_at or now
                self.last_error_at = now
                self.error_times.append(now)
                self.ledger.failed(chat, user, cmid, type(exc).__name__)
            else:
                self.ledger.acked(chat, user, cmid, int(ack.message_id))
                self.ack_times.append(time.monotonic())
            wait = 1.0 / rate - (time.monotonic() - started)
            if wait > 0:
                await anyio.sleep(wait)


async def _settle(stack: Stack, ledger: Ledger, timeout_s: float = 60.0) -> float:
    """Wait (bounded) until every acked message is in the store; the seconds it took."""
    started = time.monotonic()
    want = ledger.acked_keys()
    while time.monotonic() - started < timeout_s:
        rows = await anyio.to_thread.run_sync(stack.stored)
        if want <= {(r.chat, r.sender, r.client_msg_id) for r in rows}:
            break
        await anyio.sleep(0.5)
    return time.monotonic() - started


async def _final(stack: Stack, ledger: Ledger) -> Tally:
    await _settle(stack, ledger)
    # Let retries still in flight land too, then count.
    await anyio.sleep(1.0)
    return tally(ledger, await anyio.to_thread.run_sync(stack.stored))


def _tally_figures(t: Tally) -> dict[str, Any]:
    return {
        "sent": t.sent,
        "acked": t.acked,
        "unacked": t.unacked,
        "stored": t.stored,
        "acked_lost": t.acked_lost,
        "duplicated": t.duplicated,
        "reordered": t.reordered,
        "wrong_id": t.wrong_id,
        "unacked_stored_once": t.unacked_stored,
        "unacked_stored_twice": t.unacked_twice,
    }


async def _groups(
    stack: Stack, clients: dict[str, ChatClient], users: list[str], size: int
) -> dict[str, str]:
    """Put ``users`` into groups of ``size``; each user's chat id."""
    chat_of: dict[str, str] = {}
    for at in range(0, len(users), size):
        members = users[at : at + size]
        view = await clients[members[0]].create_group(f"g{at}", members[1:])
        chat_of.update(dict.fromkeys(members, view.chat))
    return chat_of


# ---------------------------------------------------------------- scenarios


async def kafka_kill(ctx: Context) -> Outcome:
    """kill -9 the Kafka broker under 50 senders, restart it, count from the store."""
    n = ctx.sizes.senders
    out = Outcome(
        "kafka_kill",
        f"Kafka broker `kill -9` and restart under {n} senders",
        "acked lost/duplicated/reordered = 0; an unacked send stored at most once",
    )
    users = [f"s{i}" for i in range(n)]
    senders = Senders()
    async with running(ctx.stack("kafka_kill")) as stack:
        async with _clients(stack, users) as clients:
            chat_of = await _groups(stack, clients, users, 10)
            async with anyio.create_task_group() as tg:
                send = partial(senders.run, rate=ctx.sizes.rate_per_sender)
                for u in users:
                    tg.start_soon(send, clients[u], u, chat_of[u])
                await anyio.sleep(4)
                before = senders.ledger.acked_count
                killed = time.monotonic()
                out.figures["acked_before_kill"] = before
                await ctx.services.kill("kafka")
                await anyio.sleep(2)
                await ctx.services.start("kafka")
                back = time.monotonic()
                out.figures["broker_down_s"] = round(back - killed, 1)
                # Sends flow again once an ack arrives after the restart.
                recovered = await _wait_for(
                    lambda: senders.ledger.acked_count > before + n, timeout_s=60
                )
                if recovered is None:
                    out.notes.append("no new acks within 60 s of the broker's restart")
                await anyio.sleep(4)
                senders.stop.set()
            out.figures["longest_ack_gap_s"] = round(senders.longest_ack_gap(killed - 1), 1)
        t = await _final(stack, senders.ledger)
    out.figures.update(_tally_figures(t))
    out.figures["errors"] = dict(senders.ledger.errors())
    out.passed = t.ok and t.acked > 0
    return out


async def gateway_restart(ctx: Context) -> Outcome:
    """kill -9 the gateway process (workers run on) while senders send; the SDK retries."""
    out = Outcome(
        "gateway_restart",
        "gateway process `kill -9` and restart mid-stream (workers keep running); "
        "then acked ids sent again",
        "one stored copy per send; every ack (and a re-send's ack) carries the first message_id",
    )
    users = [f"r{i}" for i in range(10)]
    senders = Senders()
    stack = ctx.stack("gateway_restart", split=True)
    async with running(stack), _clients(stack, users) as clients:
        chat_of = await _groups(stack, clients, users, 5)
        async with anyio.create_task_group() as tg:
            for u in users:
                tg.start_soon(partial(senders.run, rate=10.0), clients[u], u, chat_of[u])
            await anyio.sleep(3)
            out.figures["gateway_back_s"] = round(await stack.restart_gateway(signal.SIGKILL), 1)
            await anyio.sleep(3)
            senders.stop.set()
        t = await _final(stack, senders.ledger)
        # The app sends acked ids again (as after a lost ack): same message_id, no copy.
        again = same = 0
        for u in users[:5]:
            for i in range(0, 40, 4):
                key = (chat_of[u], u, f"{u}-{i}")
                first = senders.ledger.message_id(*key)
                if first is None:
                    continue
                again += 1
                ack = await clients[u].send(key[0], "again", client_msg_id=key[2])
                same += int(ack.message_id) == first
        await anyio.sleep(1)
        t2 = tally(senders.ledger, await anyio.to_thread.run_sync(stack.stored))
    out.figures.update(_tally_figures(t))
    out.figures["resent_acked"] = again
    out.figures["resent_same_id"] = same
    out.figures["copies_after_resend"] = t2.duplicated
    out.figures["errors"] = dict(senders.ledger.errors())
    out.passed = t.ok and t2.ok and same == again > 0
    return out


async def reconnect_cut(ctx: Context) -> Outcome:
    """A receiver's network cut for 5 s while messages flow to it; it must catch up."""
    from benchmarks.faults.proxy import relay

    total = ctx.sizes.cut_messages
    out = Outcome(
        "reconnect_cut",
        f"receiver's connection reset and refused for 5 s while {total} messages flow",
        "receiver gets every message once, in order; what was acked by the end of the cut "
        "reaches it within 10 s of the cut's end",
    )
    senders = Senders()
    stack = ctx.stack("reconnect_cut")
    async with running(stack), relay(stack.port) as cut, _clients(stack, ["tx"]) as clients:
        chat = (await clients["tx"].create_direct("rx")).chat
        rx = ChatClient(
            f"ws://127.0.0.1:{cut.port}/ws",
            token=stack.token("rx"),
            device="rx",
            options=_options(),
        )
        got: list[int] = []
        done = anyio.Event()
        async with rx:

            async def receive() -> None:
                async for event in rx.events():
                    if isinstance(event, MessageReceived) and event.chat == chat:
                        got.append(event.message.seq)
                        if len(got) >= total:
                            done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                tg.start_soon(
                    lambda: senders.run(clients["tx"], "tx", chat, rate=total / 7.0, limit=total)
                )
                await anyio.sleep(1)
                await cut.cut(5.0)
                healed = time.monotonic()
                backlog = set(range(1, senders.ledger.acked_count + 1))
                recovered = await _wait_for(lambda: backlog <= set(got), timeout_s=60)
                with anyio.move_on_after(60):
                    await done.wait()
                caught_up = time.monotonic()
                tg.cancel_scope.cancel()
        t = await _final(stack, senders.ledger)
    unique = len(set(got))
    out.figures["received"] = len(got)
    out.figures["received_unique"] = unique
    out.figures["received_duplicates"] = len(got) - unique
    out.figures["received_out_of_order"] = sum(1 for a, b in itertools.pairwise(got) if b <= a)
    out.figures["relay_connections"] = cut.connections
    out.figures["acked_by_cut_end"] = len(backlog)
    out.figures["backlog_received_after_cut_s"] = (
        round(recovered - healed, 1) if recovered else "not in 60 s"
    )
    out.figures["all_received_after_cut_s"] = (
        round(caught_up - healed, 1) if done.is_set() else "never (60 s)"
    )
    out.figures.update(_tally_figures(t))
    out.passed = (
        t.ok
        and done.is_set()
        and unique == t.acked == total
        and len(got) == unique
        and out.figures["received_out_of_order"] == 0
        and recovered is not None
        and recovered - healed <= 10.0
    )
    return out


async def redis_loss(ctx: Context) -> Outcome:
    """FLUSHALL, then kill -9 and restart Redis (no persistence) under live clients."""
    ttl = 6.0
    out = Outcome(
        "redis_loss",
        "Redis `FLUSHALL`, then `kill -9` and restart empty (no persistence), clients connected",
        f"history intact; live delivery resumes; presence online again within the TTL "
        f"({ttl:g} s); every message reaches the observer in the end",
    )
    users = [f"p{i}" for i in range(5)]
    ledger = Ledger()
    stack = ctx.stack("redis_loss", presence_ttl_s=ttl, heartbeat_s=2.0)
    async with running(stack), _clients(stack, ["obs", *users]) as clients:
        obs = clients["obs"]
        chats = {u: (await clients[u].create_direct("obs")).chat for u in users}
        seen: dict[str, float] = {}

        async def watch() -> None:
            async for event in obs.events():
                if isinstance(event, MessageReceived):
                    seen.setdefault(event.message.client_msg_id, time.monotonic())

        async def send(u: str, cmid: str) -> None:
            ledger.sent(chats[u], u, cmid)
            try:
                with anyio.fail_after(SEND_TIMEOUT_S):
                    ack = await clients[u].send(chats[u], "probe", client_msg_id=cmid)
                ledger.acked(chats[u], u, cmid, int(ack.message_id))
            except (ChatcoreError, TimeoutError) as exc:
                ledger.failed(chats[u], u, cmid, type(exc).__name__)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await obs.subscribe_presence(users)
            for fault in ("flush", "restart"):
                if fault == "flush":
                    await ctx.services.redis("FLUSHALL")
                else:
                    await ctx.services.kill("redis")
                    await ctx.services.start("redis")
                hit = time.monotonic()
                # A probe every 0.25 s until one is delivered live.
                probes: list[str] = []
                first_live: float | None = None
                while first_live is None and time.monotonic() - hit < ttl * 3:
                    u = users[len(probes) % len(users)]
                    probes.append(f"{u}-{fault}-{len(probes)}")
                    await send(u, probes[-1])
                    await anyio.sleep(0.25)
                    live = [seen[c] for c in probes if c in seen]
                    first_live = min(live) if live else None
                out.figures[f"{fault}_live_delivery_s"] = (
                    round(first_live - hit, 1) if first_live else f"not in {ttl * 3:g} s"
                )
                online = await _wait_for_async(lambda: _all_online(obs, users), timeout_s=ttl * 3)
                out.figures[f"{fault}_presence_online_s"] = (
                    round(online - hit, 1) if online else f"not in {ttl * 3:g} s"
                )
                out.figures[f"{fault}_probes_missed_live"] = sum(
                    1 for c in probes if c not in seen or seen[c] > (first_live or 0)
                )
            # One last message per chat: the observer fills any gap it then sees.
            for u in users:
                await send(u, f"{u}-tail")
            acked = {k[2] for k in ledger.acked_keys()}
            await _wait_for(lambda: acked <= seen.keys(), timeout_s=15)
            out.figures["observer_missing_at_end"] = len(acked - seen.keys())
            tg.cancel_scope.cancel()

        # History through the server (its hot cache in Redis is gone): every message,
        # once the store has them all (live delivery may run ahead of persistence).
        async def history() -> int:
            n = 0
            for u in users:
                n += len([m async for m in clients[u].history(chats[u], after=0)])
            return n

        out.figures["history_right_after_delivery"] = await history()
        t = await _final(stack, ledger)
        out.figures["history_messages"] = count = await history()
    out.figures.update(_tally_figures(t))
    timely = all(
        isinstance(out.figures[f"{f}_presence_online_s"], float)
        and out.figures[f"{f}_presence_online_s"] <= ttl
        and isinstance(out.figures[f"{f}_live_delivery_s"], float)
        for f in ("flush", "restart")
    )
    out.passed = (
        t.ok and count == t.acked and timely and out.figures["observer_missing_at_end"] == 0
    )
    return out


async def _all_online(client: ChatClient, users: list[str]) -> bool:
    try:
        states = await client.subscribe_presence(users)
    except ChatcoreError:
        return False
    return all(s.status == "online" for s in states)


async def _wait_for(condition: Callable[[], bool], *, timeout_s: float) -> float | None:
    """The monotonic time ``condition`` first held, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.monotonic()
        await anyio.sleep(0.05)
    return None


async def _wait_for_async(
    condition: Callable[[], Awaitable[bool]], *, timeout_s: float
) -> float | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with anyio.move_on_after(max(0.1, deadline - time.monotonic())):
            if await condition():
                return time.monotonic()
        await anyio.sleep(0.2)
    return None


@asynccontextmanager
async def _clients(
    stack: Stack, users: list[str], **options: Any
) -> AsyncIterator[dict[str, ChatClient]]:
    """Connected ChatClients, one per user, closed together (nobody reads their events:
    a full event queue makes a client fetch from history later, it does not grow)."""
    opts = _options(**options)
    async with AsyncExitStack() as stack_:
        clients: dict[str, ChatClient] = {}
        for u in users:
            clients[u] = await stack_.enter_async_context(
                stack.client(u, device=f"{u}-d", options=opts)
            )
        yield clients
