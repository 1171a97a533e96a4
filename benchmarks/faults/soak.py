"""The soak: thousands of connections churning for minutes; the gateway must stay flat.

:func:`soak` runs it on the real processes (``chatcore serve`` on Redis and Kafka) and
samples the gateway every second: RSS, open files and threads from ``/proc``, live
connections and event-loop tasks from ``/metrics``. :func:`verdict` (pure) judges
the samples.

How it is judged: the run is cut in thirds. The first third is warm-up and is left
out: the process's allocator arenas and the garbage collector's generations reach
their working size then (``chatcore serve`` collects rarely, see ``chatcore._gc``, so
the closed connections' reference cycles pile up until a full collection, and RSS
keeps the high-water mark). Bounded caches do not matter here: the soak's 2,002 users
and one chat keep them below a few thousand entries. The second third is the
baseline and the last third must not exceed it by more than:

- RSS: 5 % (a leak of 1 KiB per connection cycle, about 10 MiB over the last third
  of a 300 s run, is caught);
- open files not held by a connection (files minus the connections the clients have
  open or opening, counted on the client side: an overloaded gateway has many
  connections still in their handshake, which its ``chatcore_connections`` gauge
  does not count): 50;
- threads: 5;
- event-loop tasks not held by a connection (tasks minus the same count): 100.

A 300 s run makes about 5,000 connection cycles a third, so a file leaked every 100
cycles, or a task every 50, breaks its bound.

The means of the windows are compared, not single samples, so the churn's noise
(how many connections are open at a given second) averages out.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
from websockets.exceptions import WebSocketException

from benchmarks.faults.overload import ProcSample, _ws, sample
from benchmarks.faults.scenarios import Context, Outcome, _clients, running
from benchmarks.faults.stack import Stack
from chatcore.errors import ChatcoreError

__all__ = ["BOUNDS", "SoakSample", "soak", "verdict"]

BOUNDS = {"rss_ratio": 1.05, "fds": 50.0, "threads": 5.0, "tasks": 100.0}
"""How much the last third may exceed the second (see the module's docstring)."""


@dataclass(frozen=True)
class SoakSample:
    """One sample of the gateway (``connections``/``tasks``: NaN if /metrics timed out)."""

    at_s: float
    proc: ProcSample
    connections: float
    tasks: float
    clients: int = -1
    """Connections the clients had open or opening (-1: use ``connections``)."""

    @property
    def held(self) -> float:
        """Connections that hold a file and tasks in the gateway."""
        return float(self.clients) if self.clients >= 0 else self.connections


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def verdict(samples: Sequence[SoakSample]) -> tuple[bool, dict[str, Any]]:
    """Whether the gateway stayed flat from the second third to the last, and the
    figures of each third (``warmup``, ``steady``, ``last``)."""
    third = len(samples) // 3
    if third < 1:
        return False, {"samples": len(samples)}
    windows = {
        "warmup": samples[:third],
        "steady": samples[third : 2 * third],
        "last": samples[2 * third :],
    }
    figures: dict[str, Any] = {}
    means: dict[str, dict[str, float]] = {}
    for name, window in windows.items():
        live = [s for s in window if not math.isnan(s.connections)]
        held = [s for s in window if not math.isnan(s.held)]
        tasks = [s for s in held if not math.isnan(s.tasks)]
        means[name] = m = {
            "rss_mib": _mean([s.proc.rss_kib / 1024 for s in window]),
            "connections": _mean([s.connections for s in live]),
            "fds_net": _mean([s.proc.fds - s.held for s in held]),
            "threads": _mean([s.proc.threads for s in window]),
            "tasks_net": _mean([s.tasks - s.held for s in tasks]),
        }
        for key, value in m.items():
            figures[f"{key}_{name}"] = round(value, 1)
    figures["rss_max_mib"] = round(max(s.proc.rss_kib for s in samples) / 1024, 1)
    steady, last = means["steady"], means["last"]
    figures["rss_growth_steady_to_last_pct"] = round(
        100 * (last["rss_mib"] / steady["rss_mib"] - 1), 1
    )
    flat = (
        last["rss_mib"] <= steady["rss_mib"] * BOUNDS["rss_ratio"]
        and last["fds_net"] <= steady["fds_net"] + BOUNDS["fds"]
        and last["threads"] <= steady["threads"] + BOUNDS["threads"]
        and last["tasks_net"] <= steady["tasks_net"] + BOUNDS["tasks"]
    )
    return flat, figures


_CLOSES = 'chatcore_connection_closes_total{code="'


def _gauges(stack: Stack) -> tuple[float, float, dict[str, int]]:
    """``chatcore_connections``, ``chatcore_event_loop_tasks`` (NaN if the gateway does
    not answer within 3 s) and the server's closes by code."""
    try:
        text = httpx.get(f"{stack.http}/metrics", timeout=3).text
    except httpx.HTTPError:
        return math.nan, math.nan, {}
    found = {"chatcore_connections": math.nan, "chatcore_event_loop_tasks": math.nan}
    closes: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] = float(value)
        elif name.startswith(_CLOSES):
            closes[name[len(_CLOSES) : -2]] = int(float(value))
    return found["chatcore_connections"], found["chatcore_event_loop_tasks"], closes


async def soak(ctx: Context) -> Outcome:
    n = ctx.sizes.soak_connections
    seconds = ctx.sizes.soak_s
    out = Outcome(
        "soak",
        f"{seconds:g} s (after a ramp) of {n} connections churning (each connects, says "
        "hello, stays 5 to 40 s, closes, again), plus a sender and a receiver chatting",
        "gateway flat after warm-up (the first third): the last third's mean RSS within "
        "5% of the second third's; open files and event-loop tasks not held by a "
        "connection within +50 / +100, threads within +5",
    )
    samples: list[SoakSample] = []
    cycles = sent = opened = 0
    errors: Counter[str] = Counter()
    closes: dict[str, int] = {}
    async with running(ctx.stack("soak")) as stack:
        pid = stack.gateway.pid
        stop = anyio.Event()
        ramp_s = min(10.0, seconds / 2)

        async def churn(i: int) -> None:
            nonlocal cycles, opened
            rng = random.Random(i)
            # Spread the first connections over the ramp, then each lives 5 to 40 s.
            await anyio.sleep(rng.uniform(0, ramp_s))
            while not stop.is_set():
                opened += 1
                try:
                    ws = await _ws(stack, f"c{i}")
                    try:
                        with anyio.move_on_after(rng.uniform(5, 40)):
                            await stop.wait()
                    finally:
                        with anyio.move_on_after(5, shield=True):
                            await ws.close()
                    cycles += 1
                except (OSError, WebSocketException, TimeoutError) as exc:
                    errors[type(exc).__name__] += 1
                    await anyio.sleep(1)
                finally:
                    opened -= 1

        async with _clients(stack, ["tx", "rx"]) as clients:
            chat = (await clients["tx"].create_direct("rx")).chat

            async def chatting() -> None:
                nonlocal sent
                while not stop.is_set():
                    try:
                        with anyio.fail_after(10):
                            await clients["tx"].send(chat, "soak")
                        sent += 1
                    except (ChatcoreError, TimeoutError) as exc:  # counted, not fatal
                        errors[f"send {type(exc).__name__}"] += 1
                    await anyio.sleep(1.0)

            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(churn, i)
                await anyio.sleep(ramp_s + 5)  # every connection up before the first sample
                tg.start_soon(chatting)
                started = time.monotonic()
                while (at := time.monotonic() - started) < seconds:
                    opening = opened
                    live, tasks, counted = await anyio.to_thread.run_sync(_gauges, stack)
                    closes = counted or closes
                    samples.append(SoakSample(at, sample(pid), live, tasks, opening))
                    await anyio.sleep(max(0.0, len(samples) - (time.monotonic() - started)))
                stop.set()
                tg.cancel_scope.cancel()
    flat, figures = verdict(samples)
    out.figures.update(
        connection_cycles=cycles,
        errors=dict(errors),
        server_closes_by_code=closes,
        messages_sent=sent,
        samples=len(samples),
        metrics_reads_timed_out=sum(1 for s in samples if math.isnan(s.connections)),
    )
    out.figures.update(figures)
    out.passed = flat and cycles > 0 and sent > 0
    return out
