"""Scenarios of abusive or unlucky clients: half-open handshakes, a slow consumer.

These speak the wire protocol over raw WebSockets (``websockets``) or raw TCP, to
control exactly what a client does not do (read, finish its handshake, say hello),
and sample the gateway process from ``/proc`` (RSS, open files, threads).
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from benchmarks.faults.scenarios import Context, Outcome, _clients, _options, running
from benchmarks.faults.stack import Stack
from chatcore.protocol import SUBPROTOCOL_JSON, Hello, Message, Welcome, codec_for

__all__ = ["ProcSample", "half_open", "sample", "slow_consumer"]

CODEC = codec_for(SUBPROTOCOL_JSON)


@dataclass(frozen=True)
class ProcSample:
    rss_kib: int
    fds: int
    threads: int


def sample(pid: int) -> ProcSample:
    """RSS, open file descriptors and threads of ``pid`` (from /proc)."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return ProcSample(rss, len(os.listdir(f"/proc/{pid}/fd")), threads)


def metric(stack: Stack, prefix: str) -> float:
    """One sample of the gateway's /metrics, by the start of its line (0 if absent,
    NaN if the gateway does not answer within 10 s)."""
    try:
        text = httpx.get(f"{stack.http}/metrics", timeout=10).text
    except httpx.HTTPError:
        return float("nan")
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


def closes(stack: Stack, code: str) -> float:
    """How many connections the gateway closed with ``code``."""
    count = metric(stack, f'chatcore_connection_closes_total{{code="{code}"}} ')
    return 0.0 if math.isnan(count) else count


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _ws(stack: Stack, user: str, *, max_queue: int = 16) -> ClientConnection:
    """A raw WebSocket with a welcomed session of ``user``."""
    ws = await connect(
        stack.url,
        subprotocols=[SUBPROTOCOL_JSON],  # type: ignore[list-item]
        max_queue=max_queue,
        ping_interval=None,
        compression=None,
        open_timeout=30,
        max_size=8 * 1024 * 1024,
    )
    await ws.send(CODEC.encode_client(Hello(id=1, token=stack.token(user), device="raw")).decode())
    while True:
        frame = CODEC.decode_server(await ws.recv())
        if isinstance(frame, Welcome):
            return ws


# ---------------------------------------------------------------- half-open handshakes

_UPGRADE = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    f"Sec-WebSocket-Protocol: {SUBPROTOCOL_JSON}\r\n\r\n"
).encode()


async def half_open(ctx: Context) -> Outcome:
    n = ctx.sizes.half_open
    wait_s = 30.0
    out = Outcome(
        "half_open",
        f"{n} half-open handshakes: {n - n // 2} TCP connections stopped halfway through "
        f"the HTTP upgrade request, {n // 2} upgraded WebSockets that never send `hello`",
        f"every one closed by the server at its timeout (looked for {wait_s:g} s); "
        "a normal client connects within 1 s meanwhile",
    )
    async with running(ctx.stack("half_open")) as stack:
        closed: dict[str, list[float]] = {"http": [], "hello": []}
        failed_open = 0

        async def hold(kind: str, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
            nonlocal failed_open
            try:
                stream = await anyio.connect_tcp("127.0.0.1", stack.port)
            except OSError:
                failed_open += 1
                task_status.started()
                return
            opened = time.monotonic()
            async with stream:
                try:
                    if kind == "http":
                        await stream.send(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    else:
                        await stream.send(_UPGRADE)
                        head = b""
                        while b"\r\n\r\n" not in head:
                            head += await stream.receive()
                        if not head.startswith(b"HTTP/1.1 101"):
                            failed_open += 1
                            task_status.started()
                            return
                    task_status.started()
                    while True:
                        await stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass
                closed[kind].append(time.monotonic() - opened)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                await tg.start(hold, "http" if i % 2 == 0 else "hello")
            started = time.monotonic()
            async with _clients(stack, ["normal"], connect_timeout_s=10.0) as _:
                out.figures["normal_client_connect_s"] = round(time.monotonic() - started, 2)
            with anyio.move_on_after(wait_s):
                while True:
                    if len(closed["http"]) + len(closed["hello"]) >= n - failed_open:
                        break
                    await anyio.sleep(0.1)
            out.figures["server_closes_4002"] = await anyio.to_thread.run_sync(
                closes, stack, "4002"
            )
            tg.cancel_scope.cancel()
    for kind, label in (("http", "partial_http"), ("hello", "no_hello")):
        times = closed[kind]
        out.figures[f"{label}_closed"] = (
            f"{len(times)}/{(n - n // 2) if kind == 'http' else n // 2}"
        )
        out.figures[f"{label}_close_median_s"] = (
            round(statistics.median(times), 1) if times else "-"
        )
        out.figures[f"{label}_close_max_s"] = round(max(times), 1) if times else "-"
    out.figures["refused_or_failed_to_open"] = failed_open
    if len(closed["http"]) < n - n // 2:
        out.notes.append(
            f"{n - n // 2 - len(closed['http'])} connections stalled inside the HTTP upgrade "
            f"request were still open {wait_s:g} s after the last one opened"
        )
    total_closed = len(closed["http"]) + len(closed["hello"])
    out.passed = (
        failed_open == 0 and total_closed == n and out.figures["normal_client_connect_s"] <= 1.0
    )
    return out


# ---------------------------------------------------------------- slow consumer


@dataclass
class _Reader:
    latencies: list[float] = field(default_factory=list)
    phase: str = "baseline"
    by_phase: dict[str, list[float]] = field(default_factory=lambda: {"baseline": [], "slow": []})


async def slow_consumer(ctx: Context) -> Outcome:
    members = ctx.sizes.group_members
    body = "x" * 1000
    out = Outcome(
        "slow_consumer",
        f"one member of a {members}-member group (all connected) stops reading its socket "
        "while the group gets messages",
        "the slow one is closed with 4008; gateway memory bounded; "
        "the others' p99 delivery latency unchanged (within 2x of the baseline, +50 ms)",
    )
    users = [f"m{i}" for i in range(members)]
    sender, slow, readers = users[0], users[1], users[2:]
    reader = _Reader()
    stack = ctx.stack("slow_consumer")
    async with running(stack), _clients(stack, [sender]) as clients:
        chat = (await clients[sender].create_group("big", users[1:])).chat
        conns: list[ClientConnection] = []
        try:
            for u in readers:
                conns.append(await _ws(stack, u))
            # The default receive buffer: the server's capped send buffer is what makes
            # the backlog visible to it. (A 4 KiB one, set before connecting, left the
            # sender in zero-window probes that a reader resuming could not drain
            # within the close grace.)
            slow_ws = await _ws(stack, slow, max_queue=1)
            conns.append(slow_ws)

            async def read(ws: ClientConnection) -> None:
                try:
                    async for data in ws:
                        frame = CODEC.decode_server(data)
                        if isinstance(frame, Message) and frame.chat == chat:
                            sent = float(frame.body.split(" ", 1)[0])
                            reader.by_phase[reader.phase].append(time.time() - sent)
                except (ConnectionClosed, WebSocketException):
                    pass

            async def send_for(seconds: float, stop: anyio.Event | None = None) -> int:
                count = 0
                end = time.monotonic() + seconds
                while time.monotonic() < end and not (stop and stop.is_set()):
                    await clients[sender].send(chat, f"{time.time():.6f} {body}")
                    count += 1
                    await anyio.sleep(0.04)
                return count

            async with anyio.create_task_group() as tg:
                for ws in conns[:-1]:
                    tg.start_soon(read, ws)
                # Baseline: the slow member reads too.
                tg.start_soon(read_some, slow_ws, reader)
                base_rss = sample(stack.gateway.pid).rss_kib
                out.figures["baseline_messages"] = await send_for(5.0)
                await anyio.sleep(1)
                reader.phase = "slow"
                reader.stop_slow = True  # type: ignore[attr-defined]
                closed = anyio.Event()
                peak = base_rss
                started = time.monotonic()

                async def watch_rss() -> None:
                    nonlocal peak
                    while not closed.is_set():
                        peak = max(peak, sample(stack.gateway.pid).rss_kib)
                        await anyio.sleep(0.2)

                drained = anyio.Event()

                async def watch_slow() -> None:
                    # The server's own count: the slow client reads nothing, so it
                    # cannot see its close frame until it reads again: at once, down
                    # to the close frame (the server resets it after a grace period).
                    while True:
                        if await anyio.to_thread.run_sync(closes, stack, "4008") > 0:
                            break
                        await anyio.sleep(0.25)
                    closed.set()
                    with anyio.move_on_after(15):
                        with contextlib.suppress(ConnectionClosed, WebSocketException):
                            async for _ in slow_ws:
                                pass
                    drained.set()

                tg.start_soon(watch_rss)
                tg.start_soon(watch_slow)
                out.figures["slow_phase_messages"] = await send_for(60.0, closed)
                closed_4008 = closed.is_set()
                out.figures["slow_closed_4008_after_s"] = (
                    round(time.monotonic() - started, 1) if closed_4008 else "not in 60 s"
                )
                if closed_4008:
                    with anyio.move_on_after(16):
                        await drained.wait()
                closed.set()
                await anyio.sleep(1)
                tg.cancel_scope.cancel()
            code = slow_ws.protocol.close_code
        finally:
            for ws in conns:
                with anyio.move_on_after(2, shield=True):
                    await ws.close()
    out.figures["slow_client_saw_close_code"] = code if code is not None else "none"
    out.figures["gateway_rss_baseline_mib"] = round(base_rss / 1024, 1)
    out.figures["gateway_rss_peak_mib"] = round(peak / 1024, 1)
    for phase in ("baseline", "slow"):
        lat = reader.by_phase[phase]
        out.figures[f"{phase}_deliveries"] = len(lat)
        out.figures[f"{phase}_p50_ms"] = round(_pct(lat, 0.5) * 1000, 1)
        out.figures[f"{phase}_p99_ms"] = round(_pct(lat, 0.99) * 1000, 1)
    if not closed_4008:
        out.notes.append(
            "the gateway did not close the slow connection with 4008 within 60 s "
            f"(its /metrics counted none); when the slow client read again it saw close code "
            f"{code} (1006: the connection ended without a close frame)"
        )
    p99_base, p99_slow = out.figures["baseline_p99_ms"], out.figures["slow_p99_ms"]
    out.passed = code == 4008 and p99_slow <= 2 * p99_base + 50 and peak - base_rss < 200 * 1024
    return out


async def read_some(ws: ClientConnection, reader: _Reader) -> None:
    """The slow member reads during the baseline, then stops reading for good."""
    try:
        while not getattr(reader, "stop_slow", False):
            with anyio.move_on_after(0.1):
                await ws.recv()
    except (ConnectionClosed, WebSocketException):
        pass


_ = _options
