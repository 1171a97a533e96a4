"""Memory per idle connection: server RSS with N connections open, minus RSS before.

chatcore (``serve --memory``; each connection is a ChatClient that said hello and
synced) against two floors: a trivial ASGI app on the same uvicorn, and a bare
``websockets`` server (a handshake and nothing else). The
load generators bind to several loopback source addresses (127.0.0.x) when N is
above the ephemeral port range of one, and every process raises its open-file limit.
"""

from __future__ import annotations

import anyio

from benchmarks.loadgen import Job
from benchmarks.profiling import ProfileRecorder
from benchmarks.scenarios._common import Bench
from benchmarks.system import source_ips

__all__ = ["run"]

TARGETS = (
    "chatcore-memory",
    "chatcore-memory-asgi",
    "chatcore-memory-granian",
    "uvicorn",
    "websockets",
)
LARGEST = 19_000
"""The most connections one server process can hold here: the open-file hard limit is
20,000 and cannot be raised without CAP_SYS_RESOURCE (50k would need it)."""
_PER_WORKER = 10_000
_SETTLE_S = 3.0


def sizes(bench: Bench) -> list[int]:
    return [200, 1000] if bench.quick else [1000, 10_000, LARGEST]


async def measure(bench: Bench, target_kind: str, size: int) -> dict[str, float]:
    """Open ``size`` idle connections to a fresh target; its memory before and after."""
    async with bench.fleet() as fleet:
        target = await fleet.start_target(target_kind)
        await anyio.sleep(min(1.0, bench.duration_s))
        base = target.usage()
        count = -(-size // _PER_WORKER)
        run_id = bench.run_id()
        ips = source_ips(size)
        jobs = [
            Job(
                target=target_kind,
                url=target.url,
                run_id=run_id,
                worker=i,
                secret=fleet.env["CHATCORE_SECRET"],
                connections=size // count + (1 if i < size % count else 0),
                source_ips=ips,
                connect_concurrency=200,
            )
            for i in range(count)
        ]
        recorder = None
        if bench.profile and size == max(sizes(bench)):
            (bench.out / "profiles").mkdir(parents=True, exist_ok=True)
            output = bench.out / "profiles" / f"connect-{target_kind}.txt"
            recorder = ProfileRecorder(target.process.pid, output, duration_s=10.0)
            await recorder.start()
        workers = await fleet.start_workers(jobs, what=f"idle: {target_kind} x {size}")
        if recorder is not None and (found := await recorder.finish("connect", target_kind)):
            bench.results.profiles.append(found)
        await anyio.sleep(min(_SETTLE_S, bench.duration_s))
        loaded = target.usage()
        readies = [w.ready for w in workers if w.ready is not None]
        connected = sum(r.connected for r in readies)
        connect_s = max(r.connect_s for r in readies)
        await fleet.stop_workers(workers)
    return {
        "connected": float(connected),
        "failed": float(sum(r.failed for r in readies)),
        "connect_s": connect_s,
        "connects_per_s": connected / connect_s if connect_s else 0.0,
        "rss_base_mib": base.rss_bytes / 2**20,
        "rss_mib": loaded.rss_bytes / 2**20,
        "kib_per_conn": (loaded.rss_bytes - base.rss_bytes) / max(1, connected) / 1024,
    }


async def run(bench: Bench) -> None:
    """Every size, every target, ``bench.repeats`` times (fewer above 1k: it takes minutes)."""
    for size in sizes(bench):
        repeats = bench.repeats if size <= 1000 else min(bench.repeats, 2 if size <= 10_000 else 1)
        for _ in range(repeats):
            for kind in TARGETS:
                metrics = await measure(bench, kind, size)
                bench.results.point("idle", kind, {"connections": size}).add(metrics)
