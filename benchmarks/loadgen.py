"""One load generator process: ``python -m benchmarks.loadgen``, driven over stdin/stdout.

``benchmarks/loadgen-go`` is the same process in Go (chatcore and Centrifugo targets):
it reads the same lines and answers the same way, so the parent drives either.

The parent writes a :class:`Job` as the first JSON line on stdin. The process opens
the job's connections (at most ``connect_concurrency`` handshakes at a time),
creates its groups, and answers :class:`Ready`. Then each :class:`Round` line runs
one measurement on the same connections and is answered with a
:class:`RoundResult`; :class:`Stop` ends the process. :class:`Progress` lines come
every half second. Logs go to stderr; stdout carries only these JSON lines.

Latency is taken from the *intended* send time written into each message body
(``<monotonic ns>:<padding>``), so a sender that falls behind its schedule shows
up as latency instead of hiding it (no coordinated omission). Every process on the
machine reads the same monotonic clock.

A send the server refuses as ``overloaded`` is counted as ``refused``, not as an
error, and dropped: it is not sent again, so a paced round offers exactly its rate
whatever the server answers. In a flat-out round the refused sender then waits the
server's ``retry_after_ms`` before its next send, as a real client does (sending again
at once would measure a storm of refusals, not the server).
"""

from __future__ import annotations

import logging
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, field

import anyio
import msgspec

from benchmarks.drivers import Driver, driver_factory
from benchmarks.histogram import LatencyHistogram
from benchmarks.system import raise_fd_limit
from chatcore.errors import Overloaded

__all__ = [
    "Job",
    "Progress",
    "Ready",
    "Round",
    "RoundResult",
    "Stop",
    "Storm",
    "StormResult",
    "WorkerFailed",
    "decode_report",
    "encode_command",
]


class Job(msgspec.Struct, kw_only=True, frozen=True):
    """What one load generator connects and sets up."""

    target: str
    """``chatcore-*``, ``centrifugo``, ``socketio``, ``websockets`` or ``uvicorn``."""
    url: str
    run_id: str
    """Prefix of every user and room, so each run starts from fresh state."""
    worker: int = 0
    secret: str = ""
    """The key that signs chatcore tokens (the server's ``CHATCORE_SECRET``)."""
    connections: int = 0
    """Idle connections, one user each, in no group (when ``groups`` is empty)."""
    groups: list[int] = msgspec.field(default_factory=list)
    """Sizes of the groups this process owns (a size of 2 is a direct chat)."""
    senders_per_group: int = 1
    source_ips: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1"])
    connect_concurrency: int = 100
    body_bytes: int = 100
    client: str = "sdk"
    """chatcore targets: ``sdk`` (ChatClient) or ``wire`` (a lean protocol driver)."""
    sync: bool = False
    """Go generator, chatcore targets: sync after hello, as the SDK does."""


class Round(msgspec.Struct, tag="round", kw_only=True, frozen=True):
    """One measurement: send for ``duration_s``, then let deliveries drain."""

    duration_s: float
    rate: float = 0.0
    """Messages per second this process offers in total; 0: as fast as ``accepted``
    comes back, with ``window`` sends in flight per sender."""
    window: int = 4
    drain_s: float = 1.0


class Storm(msgspec.Struct, tag="storm", kw_only=True, frozen=True):
    """Go generator only: wait until every connection ends (the parent restarts the
    server), then reconnect them all at once, hello and sync included, pausing a fixed
    ``retry_ms`` between attempts (no jitter); answered with a :class:`StormResult`."""

    timeout_s: float
    """How long the clients may take to be back (those that are not count as failed)."""
    retry_ms: float = 50.0
    attempt_s: float = 60.0
    """The longest one attempt (connect, hello, sync) may take before it is tried again."""


class Stop(msgspec.Struct, tag="stop", frozen=True):
    """End the process (connections are dropped with it)."""


class Progress(msgspec.Struct, tag="progress", kw_only=True):
    connected: int
    failed: int
    sent: int
    received: int
    received_all: int = 0
    """Chat messages received since the start, of any round (to see a backlog drain)."""


class Ready(msgspec.Struct, tag="ready", kw_only=True):
    connected: int
    failed: int
    rooms: int
    connect_s: float
    error: str = ""


class RoundResult(msgspec.Struct, tag="result", kw_only=True):
    sent: int
    """Sends started during the round."""
    accepted: int
    """Sends acknowledged within the round's ``duration_s``."""
    received: int
    """Messages of this round received within ``duration_s``."""
    received_total: int
    """Messages of this round received by the end of the drain."""
    duration_s: float
    cpu_s: float
    """CPU time this process used during the round (load generator saturation)."""
    latency: str
    """Encoded :class:`~benchmarks.histogram.LatencyHistogram` (send → receive)."""
    latency_counts: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """The same as (microseconds, count) pairs, from a generator that has no HDR
    encoder (the Go one, ``benchmarks/loadgen-go``); empty from this one."""
    errors: int
    error: str = ""
    refused: int = 0
    """Sends the server refused as ``overloaded`` (dropped, not retried; not errors)."""


class StormResult(msgspec.Struct, tag="storm_result", kw_only=True):
    """How a :class:`Storm` went; times are ``CLOCK_MONOTONIC`` nanoseconds (the
    parent's ``time.monotonic_ns()``)."""

    reconnected: int
    failed: int
    """Clients not back before ``timeout_s``."""
    attempts: int
    """Connection attempts in all (refused ones while the server restarted included)."""
    first_down_ns: int
    last_down_ns: int
    first_back_ns: int
    last_back_ns: int
    cpu_s: float
    latency_counts: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """Each client's time from its disconnect to hello and sync done: (µs, count)."""
    error: str = ""


class WorkerFailed(msgspec.Struct, tag="failed", kw_only=True):
    error: str


Command = Round | Stop
Report = Progress | Ready | RoundResult | StormResult | WorkerFailed

_command_decoder: msgspec.json.Decoder[Command] = msgspec.json.Decoder(Command)
_report_decoder: msgspec.json.Decoder[Report] = msgspec.json.Decoder(Report)


def encode_command(command: Job | Round | Storm | Stop) -> bytes:
    """One JSON line for the worker's stdin."""
    return msgspec.json.encode(command) + b"\n"


def decode_report(line: bytes) -> Report:
    """A line of the worker's stdout; raises msgspec.DecodeError for anything else."""
    return _report_decoder.decode(line)


def _emit(report: Report) -> None:
    sys.stdout.buffer.write(msgspec.json.encode(report) + b"\n")
    sys.stdout.buffer.flush()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class _Counters:
    connected: int = 0
    failed: int = 0
    sent: int = 0
    accepted: int = 0
    received: int = 0
    received_total: int = 0
    received_all: int = 0
    errors: int = 0
    refused: int = 0
    last_error: str = ""
    round_start_ns: int = 0
    round_end_ns: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def on_message(self, body: str) -> None:
        now = time.monotonic_ns()
        self.received_all += 1
        try:
            sent_ns = int(body.partition(":")[0])
        except ValueError:
            return
        if sent_ns < self.round_start_ns or self.round_start_ns == 0:
            return  # a message of an earlier round
        self.received_total += 1
        self.latency.record_ns(now - sent_ns)
        if now < self.round_end_ns:
            self.received += 1


@dataclass
class _Group:
    members: list[Driver]
    names: list[str]
    room: str = ""


class LoadGenerator:
    """Runs one :class:`Job`: connections, groups, rounds."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.counters = _Counters()
        self.stop = anyio.Event()
        make = driver_factory(job.target, job.url, job.secret, job.client)
        ips = job.source_ips
        on_message = self.counters.on_message
        index = 0

        def new(user: str) -> Driver:
            nonlocal index
            index += 1
            return make(user, ips[index % len(ips)], on_message)

        prefix = f"{job.run_id}.{job.worker}"
        self.groups: list[_Group] = []
        self.drivers: list[Driver] = []
        if job.groups:
            for g, size in enumerate(job.groups):
                names = [f"{prefix}.{g}.{i}" for i in range(size)]
                group = _Group([new(n) for n in names], names)
                self.groups.append(group)
                self.drivers.extend(group.members)
        else:
            self.drivers = [new(f"{prefix}.{i}") for i in range(job.connections)]
        self._pad = "x" * max(0, job.body_bytes - 20)

    async def run(self) -> None:
        """Connect, set up, then obey commands from stdin until Stop."""
        c = self.counters
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._progress)
            gate = anyio.Semaphore(self.job.connect_concurrency)
            for driver in self.drivers:
                tg.start_soon(self._hold, driver, gate)
            while c.connected + c.failed < len(self.drivers):  # noqa: ASYNC110 (short poll)
                await anyio.sleep(0.05)
            connect_s = time.monotonic() - started
            error = ""
            try:
                await self._make_rooms()
            except Exception as exc:
                error = f"setting up rooms failed: {exc!r}"
            _emit(
                Ready(
                    connected=c.connected,
                    failed=c.failed,
                    rooms=len(self.groups),
                    connect_s=connect_s,
                    error=error or c.last_error,
                )
            )
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.buffer.readline)
                if not line.strip():
                    break
                command = _command_decoder.decode(line)
                if isinstance(command, Stop):
                    break
                _emit(await self._round(command))
            os._exit(0)  # dropping thousands of connections one by one takes long

    async def _hold(self, driver: Driver, gate: anyio.Semaphore) -> None:
        c = self.counters
        await gate.acquire()
        connected = False

        def on_connected() -> None:
            nonlocal connected
            connected = True
            gate.release()
            c.connected += 1

        try:
            await driver.run(on_connected, self.stop)
        except Exception as exc:
            c.last_error = repr(exc)
            if not connected:
                gate.release()
                c.failed += 1

    async def _make_rooms(self) -> None:
        gate = anyio.Semaphore(20)

        async def make(group: _Group) -> None:
            async with gate:
                creator = group.members[0]
                group.room = await creator.create_room(group.names[0], group.names)
                for member in group.members:
                    await member.join(group.room)

        async with anyio.create_task_group() as tg:
            for group in self.groups:
                tg.start_soon(make, group)

    async def _progress(self) -> None:
        c = self.counters
        while True:
            _emit(
                Progress(
                    connected=c.connected,
                    failed=c.failed,
                    sent=c.sent,
                    received=c.received,
                    received_all=c.received_all,
                )
            )
            await anyio.sleep(0.5)

    async def _round(self, spec: Round) -> RoundResult:
        c = self.counters
        c.sent = c.accepted = c.received = c.received_total = c.errors = c.refused = 0
        c.latency = LatencyHistogram()
        cpu_before = _cpu_s()
        start = time.monotonic_ns() + 50_000_000
        end = start + int(spec.duration_s * 1e9)
        c.round_start_ns, c.round_end_ns = start, end
        senders = [
            (group.members[i], group.room)
            for group in self.groups
            for i in range(min(self.job.senders_per_group, len(group.members)))
        ]
        drained = end + int(spec.drain_s * 1e9)
        with anyio.move_on_after(spec.duration_s + spec.drain_s + 0.05):
            async with anyio.create_task_group() as tg:
                for driver, room in senders:
                    if spec.rate > 0:
                        tg.start_soon(self._paced, driver, room, spec.rate / len(senders), end, tg)
                    else:
                        for _ in range(spec.window):
                            tg.start_soon(self._flat_out, driver, room, start, end)
            await anyio.sleep(max(0, drained - time.monotonic_ns()) / 1e9)  # deliveries land
        return RoundResult(
            sent=c.sent,
            accepted=c.accepted,
            received=c.received,
            received_total=c.received_total,
            duration_s=spec.duration_s,
            cpu_s=_cpu_s() - cpu_before,
            latency=c.latency.encode(),
            errors=c.errors,
            error=c.last_error,
            refused=c.refused,
        )

    def _body(self, sent_ns: int) -> str:
        return f"{sent_ns}:{self._pad}"

    async def _send(self, driver: Driver, room: str, sent_ns: int, end: int) -> float:
        """Send one message; for a send refused as overloaded, how long the server asks
        the sender to wait (seconds; 0 otherwise)."""
        c = self.counters
        c.sent += 1
        try:
            await driver.send(room, self._body(sent_ns))
        except Overloaded as exc:
            c.refused += 1
            return exc.retry_after_ms / 1000
        except Exception as exc:
            c.errors += 1
            c.last_error = repr(exc)
            return 0.0
        if time.monotonic_ns() < end:
            c.accepted += 1
        return 0.0

    async def _flat_out(self, driver: Driver, room: str, start: int, end: int) -> None:
        await anyio.sleep(max(0, start - time.monotonic_ns()) / 1e9)
        while (now := time.monotonic_ns()) < end:
            wait = await self._send(driver, room, now, end)
            if wait > 0:  # refused: wait as the server asks, as a real client does
                await anyio.sleep(min(wait, max(0, end - time.monotonic_ns()) / 1e9))

    async def _paced(
        self, driver: Driver, room: str, rate: float, end: int, tg: anyio.abc.TaskGroup
    ) -> None:
        interval = int(1e9 / rate)
        due = self.counters.round_start_ns + random.randrange(interval)
        while due < end:
            await anyio.sleep(max(0, due - time.monotonic_ns()) / 1e9)
            tg.start_soon(self._send, driver, room, due, end)
            due += interval


async def _run(job: Job) -> None:
    await LoadGenerator(job).run()


def main() -> None:
    """Read the job from stdin and run it."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    raise_fd_limit(200_000)
    job = msgspec.json.decode(sys.stdin.buffer.readline(), type=Job)
    try:
        anyio.run(_run, job)
    except Exception as exc:
        _emit(WorkerFailed(error=repr(exc)))
        raise


if __name__ == "__main__":
    main()
