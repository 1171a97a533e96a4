"""Reconnect storm: every client of a gateway comes back at once after a restart.

N clients (the Go load generator, so the client side is never the limit) connect to
a fresh target, each saying ``hello`` and syncing (``sync`` without cursors, as the
SDK does on every connect). Then the target is killed (SIGKILL: a crash, every
socket dropped at once) and started again on the same port, and every client
reconnects at once: no backoff jitter (the SDK's jitter is off here, the worst
case), a fixed ``_RETRY_MS`` pause between attempts while the port refuses, at most
``_ATTEMPT_S`` per attempt. A client is back when its ``synced`` arrived (the bare
``uvicorn`` peer: when its handshake finished). Reported: how long until all are
back after the new server listens, reconnections per second over that time,
p50/p99 of each client's time from its disconnect to being back (the restart
itself included), and the clients not back within ``_TIMEOUT_S`` (failures are
counted, never raised).
"""

from __future__ import annotations

import time

from benchmarks.histogram import LatencyHistogram
from benchmarks.loadgen import Job, Storm, StormResult
from benchmarks.profiling import ProfileRecorder
from benchmarks.scenarios._common import Bench
from benchmarks.system import source_ips

__all__ = ["run"]

TARGETS = ("chatcore-memory", "uvicorn")
"""chatcore's fast path, and a trivial ASGI WebSocket app on the same uvicorn."""
LARGEST = 10_000
_PER_WORKER = 10_000
_RETRY_MS = 50.0
_ATTEMPT_S = 60.0
_TIMEOUT_S = 120.0
_PROFILE_S = 10.0


def sizes(bench: Bench) -> list[int]:
    return [200] if bench.quick else [1000, LARGEST]


async def measure(bench: Bench, kind: str, size: int) -> dict[str, float]:
    """Connect ``size`` clients to a fresh ``kind``, restart it, time the storm."""
    async with bench.fleet() as fleet:
        target = await fleet.start_target(kind)
        count = -(-size // _PER_WORKER)
        ips = source_ips(2 * size)  # both generations of connections
        jobs = [
            Job(
                target=kind,
                url=target.url,
                run_id=bench.run_id(),
                worker=i,
                secret=fleet.env["CHATCORE_SECRET"],
                connections=size // count + (1 if i < size % count else 0),
                source_ips=ips,
                connect_concurrency=200,
                sync=True,
            )
            for i in range(count)
        ]
        workers = await fleet.start_workers(jobs, what=f"storm: {kind} x {size}", loadgen="go")
        readies = [w.ready for w in workers if w.ready is not None]
        connected = sum(r.connected for r in readies)
        connect_s = max(r.connect_s for r in readies)
        for worker in workers:
            await worker.send(Storm(timeout_s=_TIMEOUT_S, retry_ms=_RETRY_MS, attempt_s=_ATTEMPT_S))
        port = target.port
        killed = time.monotonic_ns()
        await fleet.stop_target(target, grace_s=0.0)
        target = await fleet.start_target(kind, port=port)
        listening = time.monotonic_ns()
        recorder = None
        if bench.profile:
            (bench.out / "profiles").mkdir(parents=True, exist_ok=True)
            output = bench.out / "profiles" / f"storm-{kind}-{size}.txt"
            recorder = ProfileRecorder(target.process.pid, output, duration_s=_PROFILE_S)
            await recorder.start()
        storms = []
        for worker in workers:
            answer = await worker.answer(_TIMEOUT_S + 30)
            if isinstance(answer, StormResult):
                storms.append(answer)
        if recorder is not None and (found := await recorder.finish("storm", kind)):
            bench.results.profiles.append(found)
        server_cpu_s = target.usage().cpu_s
        await fleet.stop_workers(workers)
    for s in storms:
        if s.failed:
            note = f"storm, {kind} x {size}: {s.failed} clients not back; last error: {s.error}"
            bench.results.notes.append(note)
    return _metrics(storms, size, connected, connect_s, killed, listening, server_cpu_s)


def _metrics(
    storms: list[StormResult],
    size: int,
    connected: int,
    connect_s: float,
    killed: int,
    listening: int,
    server_cpu_s: float,
) -> dict[str, float]:
    back = sum(s.reconnected for s in storms)
    latency = LatencyHistogram()
    for s in storms:
        latency.add_counts(s.latency_counts)
    summary = latency.summary()
    firsts = [s.first_back_ns for s in storms if s.reconnected]
    lasts = [s.last_back_ns for s in storms if s.reconnected]
    downs = [s.first_down_ns for s in storms if s.first_down_ns]
    start = min([listening, *firsts])  # a client may get in before READY is read
    back_s = (max(lasts) - start) / 1e9 if lasts else 0.0
    return {
        "connected": float(connected),
        "connect_s": connect_s,
        "connects_per_s": connected / connect_s if connect_s else 0.0,
        "reconnected": float(back),
        "failed": float(size - back),
        "attempts": float(sum(s.attempts for s in storms)),
        "restart_s": (listening - killed) / 1e9,
        "back_s": back_s,
        "reconnects_per_s": back / back_s if back_s else 0.0,
        "storm_s": (max(lasts) - min(downs)) / 1e9 if lasts and downs else 0.0,
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "max_ms": summary["max_ms"],
        "server_cpu_s": server_cpu_s,
    }


async def run(bench: Bench) -> None:
    """Every size, every target, ``bench.repeats`` times (once at the largest size)."""
    for size in sizes(bench):
        repeats = bench.repeats if size < LARGEST else 1
        for _ in range(repeats):
            for kind in TARGETS:
                metrics = await measure(bench, kind, size)
                bench.results.point("storm", kind, {"connections": size}).add(metrics)
