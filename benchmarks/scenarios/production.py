"""The real stack: ``chatcore serve --backend production`` on Kafka + Cassandra + Redis.

Needs the services of ``scripts/services start``. Each run gets its own topic
prefix, Redis prefix and Cassandra keyspace (``CHATCORE_TOPIC_PREFIX``,
``CHATCORE_REDIS_PREFIX``, ``CHATCORE_CASSANDRA_KEYSPACE``) and drops them
afterwards. Measured: the sustained accepted rate flat out, delivery latency at
fractions of it, and next to it aiokafka's raw produce rate on the same broker.
Every round also scrapes the server's ``/metrics`` before and after, for where the
time goes per pipeline stage (:mod:`benchmarks.stages`).

The workers variant (:func:`measure_workers`) runs the stack split as in production:
``chatcore init``, one ``chatcore gateway`` (the ``chatcore-gateway`` target) and 1, 2
or 4 ``chatcore worker`` processes (every role; Kafka's consumer groups split the
partitions among them), each serving ``/metrics`` on a port of its own. Workers are
not pinned (the gateway is, as every target), so they share the machine's cores with
the load generator; their CPU is reported per round, apart from "other CPU".
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import anyio

from benchmarks.fleet import BenchmarkFailed, Fleet, Target, Worker
from benchmarks.loadgen import Round
from benchmarks.scenarios._common import Bench, measure_round, sustained
from benchmarks.stages import scrape, stage_deltas, stage_metrics
from benchmarks.system import process_usage

__all__ = ["WORKER_COUNTS", "measure", "measure_workers", "run"]

FRACTIONS = (0.25, 0.5, 0.75)
WORKER_COUNTS = (1, 2, 4)
PARTITIONS = 4
KAFKA = os.environ.get("CHATCORE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CASSANDRA = os.environ.get("CHATCORE_CASSANDRA_HOSTS", "127.0.0.1:9042")
REDIS = os.environ.get("CHATCORE_REDIS_URL", "redis://127.0.0.1:6379/0")


def _require_services() -> None:
    for name, address in (
        ("kafka", KAFKA.split(",")[0]),
        ("cassandra", CASSANDRA.split(",")[0]),
        ("redis", REDIS.split("//")[1].split("/")[0]),
    ):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                pass
        except OSError as exc:
            raise BenchmarkFailed(
                f"{name} is not reachable at {address} ({exc}): run `scripts/services start`"
            ) from exc


def _drop(keyspace: str, redis_prefix: str) -> None:
    """Drop the run's keyspace and Redis keys (best effort, blocking)."""
    with contextlib.suppress(Exception):
        from cassandra.cluster import Cluster

        host, _, port = CASSANDRA.split(",")[0].rpartition(":")
        cluster: Any = Cluster([host], port=int(port))
        try:
            cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        finally:
            cluster.shutdown()
    with contextlib.suppress(Exception):
        from redis import Redis

        client = Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{redis_prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()


async def _drop_topics(prefix: str) -> None:
    with contextlib.suppress(Exception):
        from aiokafka.admin import AIOKafkaAdminClient

        admin: Any = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await admin.start()
        try:
            topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
            if topics:
                await admin.delete_topics(topics)
        finally:
            await admin.close()


def _env(tag: str) -> dict[str, str]:
    """The run's own topics, Redis keys and keyspace."""
    return {
        "CHATCORE_TOPIC_PREFIX": f"bench-{tag}-",
        "CHATCORE_REDIS_PREFIX": f"bench:{tag}:",
        "CHATCORE_CASSANDRA_KEYSPACE": f"bench_{tag}",
        "CHATCORE_PARTITIONS": str(PARTITIONS),
    }


async def _cleanup(env: dict[str, str]) -> None:
    await _drop_topics(env["CHATCORE_TOPIC_PREFIX"])
    await anyio.to_thread.run_sync(
        _drop, env["CHATCORE_CASSANDRA_KEYSPACE"], env["CHATCORE_REDIS_PREFIX"]
    )


async def staged_round(
    bench: Bench,
    fleet: Fleet,
    target: Target,
    workers: Sequence[Worker],
    spec: Round,
    *,
    what: str,
    scraped: Sequence[Target],
    profile_as: str | None = None,
) -> dict[str, float]:
    """:func:`measure_round`, plus per-stage latency (``stage_<stage>_*``) from the
    ``/metrics`` of ``scraped`` (summed) before and after the round."""
    urls = [t.metrics_url for t in scraped]
    before = await scrape(urls)
    metrics = await measure_round(
        bench, fleet, target, workers, spec, what=what, profile_as=profile_as
    )
    after = await scrape(urls)
    try:
        metrics.update(stage_metrics(stage_deltas(before, after)))
    except ValueError as exc:
        raise BenchmarkFailed(f"{what}: the /metrics scrapes do not add up: {exc}") from exc
    return metrics


async def measure(
    bench: Bench, pairs: int, fractions: tuple[float, ...] = FRACTIONS
) -> dict[float, dict[str, float]]:
    """Metrics per fraction of the flat-out rate (1.0: the flat-out round)."""
    tag = bench.run_id()
    env = _env(tag)
    out: dict[float, dict[str, float]] = {}
    try:
        async with bench.fleet(env) as fleet:
            target = await fleet.start_target("chatcore-production", timeout_s=300)
            workers = await fleet.start_groups(
                target, [2] * pairs, run_id=tag, what="production: connecting"
            )
            d = bench.duration_s
            top = out[1.0] = await staged_round(
                bench, fleet, target, workers, Round(duration_s=d, window=4, drain_s=3.0),
                what="production: maximum", scraped=[target], profile_as="production",
            )  # fmt: skip
            best = top["max_per_s"] = sustained(top, members=2)
            for fraction in fractions:
                drain_s = await fleet.wait_drained(workers, timeout_s=180.0)
                rate = max(1.0, fraction * best)
                metrics = await staged_round(
                    bench, fleet, target, workers,
                    Round(duration_s=d, rate=rate, drain_s=3.0),
                    what=f"production: {fraction:.0%}", scraped=[target],
                )  # fmt: skip
                metrics["max_per_s"] = best
                metrics["drain_before_s"] = drain_s
                out[fraction] = metrics
            await fleet.stop_workers(workers)
    finally:
        await _cleanup(env)
    return out


async def _init(bench: Bench, env: dict[str, str]) -> None:
    """``chatcore init``: the run's topics and keyspace; raises BenchmarkFailed."""
    done = await anyio.run_process(
        [sys.executable, "-m", "chatcore.cli", "init"],
        env=bench.fleet(env).env,
        check=False,
    )
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace")[-2000:]
        raise BenchmarkFailed(f"chatcore init failed ({done.returncode}): {error}")


def _metrics_port() -> int:
    """A port for a worker's /metrics (it listens on every interface) that nothing uses,
    below the ephemeral range so that no client socket of the run takes it meanwhile."""
    for _ in range(100):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    raise BenchmarkFailed("no free port for a worker's /metrics in 20000-31999")


async def _start_worker(fleet: Fleet, *, tries: int = 3) -> Target:
    """A ``chatcore worker`` on a free metrics port (another port if it is taken first)."""
    for _ in range(tries - 1):
        with contextlib.suppress(BenchmarkFailed):
            return await fleet.start_pipeline_worker(_metrics_port())
    return await fleet.start_pipeline_worker(_metrics_port())


async def _settle(
    fleet: Fleet, loadgens: Sequence[Worker], pairs: int, *, what: str, tries: int = 4
) -> int:
    """Short paced rounds until one is delivered whole within its drain (the consumer
    groups have settled after the workers joined, the workers are warm), ``tries`` at
    most; how many it took."""
    for attempt in range(1, tries + 1):
        spec = Round(duration_s=1.0, rate=10.0 * pairs, drain_s=2.0)
        results = await fleet.run_round(loadgens, spec, what=f"{what}: warm-up {attempt}")
        await fleet.wait_drained(loadgens, timeout_s=120.0)
        accepted = sum(r.accepted for r in results)
        if accepted > 0 and sum(r.received_total for r in results) >= 2 * accepted:
            return attempt
    return tries


async def measure_workers(
    bench: Bench, pairs: int, counts: Sequence[int] = WORKER_COUNTS
) -> dict[int, dict[str, float]]:
    """Flat-out metrics of a gateway and ``n`` worker processes, for each ``n`` of
    ``counts``: each count on fresh processes and users (the topics and keyspace are
    the run's, made once by ``chatcore init``)."""
    if not counts or min(counts) < 1:
        raise ValueError(f"worker counts must be at least 1, not {list(counts)}")
    tag = bench.run_id()
    env = _env(tag)
    out: dict[int, dict[str, float]] = {}
    try:
        await _init(bench, env)
        for n in counts:
            async with bench.fleet(env) as fleet:
                procs = [await _start_worker(fleet) for _ in range(n)]
                target = await fleet.start_target("chatcore-gateway", timeout_s=300)
                loadgens = await fleet.start_groups(
                    target, [2] * pairs, run_id=f"{tag}w{n}", what=f"{n} workers: connecting"
                )
                settle_rounds = await _settle(fleet, loadgens, pairs, what=f"{n} workers")
                before = [process_usage(p.process.pid) for p in procs]
                started = time.monotonic()
                metrics = await staged_round(
                    bench, fleet, target, loadgens,
                    Round(duration_s=bench.duration_s, window=4, drain_s=3.0),
                    what=f"{n} workers: maximum", scraped=[target, *procs],
                )  # fmt: skip
                elapsed = time.monotonic() - started
                try:
                    after = [process_usage(p.process.pid) for p in procs]
                except OSError as exc:
                    raise BenchmarkFailed(f"a chatcore worker exited; see {procs[0].log}") from exc
                cpu = [(a.cpu_s - b.cpu_s) / elapsed for a, b in zip(after, before, strict=True)]
                metrics["workers"] = float(n)
                metrics["settle_rounds"] = float(settle_rounds)
                metrics["workers_cpu"] = sum(cpu)
                metrics["busiest_worker_cpu"] = max(cpu)
                metrics["workers_rss_mib"] = sum(a.rss_bytes for a in after) / 2**20
                metrics["others_cpu"] = max(0.0, metrics["others_cpu"] - sum(cpu))
                metrics["max_per_s"] = sustained(metrics, members=2)
                out[n] = metrics
                await fleet.stop_workers(loadgens)
                for proc in procs:  # SIGINT: they leave their consumer groups cleanly
                    await fleet.stop_target(proc)
    finally:
        await _cleanup(env)
    return out


async def kafka_raw(bench: Bench, count: int) -> dict[str, float]:
    done = await anyio.run_process(
        [
            *bench.plan.load_prefix(0), sys.executable, "-m", "benchmarks.scenarios.kafka_raw",
            KAFKA, f"bench-raw-{bench.run_id()}", str(count), "300",
        ],
        env=bench.fleet().env,
    )  # fmt: skip
    rates: dict[str, float] = json.loads(done.stdout)
    return rates


async def run(bench: Bench) -> None:
    """Raises BenchmarkFailed when a service is not running."""
    _require_services()
    pairs = 5 if bench.quick else 20
    repeats = 1 if bench.quick else min(bench.repeats, 2)
    for _ in range(repeats):
        for fraction, metrics in (await measure(bench, pairs)).items():
            bench.results.point("production", "chatcore-production", {"fraction": fraction}).add(
                metrics
            )
        raw = await kafka_raw(bench, 5_000 if bench.quick else 50_000)
        bench.results.point("production", "aiokafka", {}).add(raw)
        for n, metrics in (await measure_workers(bench, pairs)).items():
            bench.results.point("production", "chatcore-workers", {"workers": n}).add(metrics)
