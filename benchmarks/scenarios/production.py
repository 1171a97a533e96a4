"""The real stack: ``chatcore serve --backend production`` on Kafka + Cassandra + Redis.

Needs the services of ``scripts/services start``. Each run gets its own topic
prefix, Redis prefix and Cassandra keyspace (``CHATCORE_TOPIC_PREFIX``,
``CHATCORE_REDIS_PREFIX``, ``CHATCORE_CASSANDRA_KEYSPACE``) and drops them
afterwards. Measured: the sustained accepted rate flat out, delivery latency at
fractions of it, and next to it aiokafka's raw produce rate on the same broker.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from typing import Any

import anyio

from benchmarks.fleet import BenchmarkFailed
from benchmarks.loadgen import Round
from benchmarks.scenarios._common import Bench, measure_round, sustained

__all__ = ["run"]

FRACTIONS = (0.25, 0.5, 0.75)
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


async def measure(
    bench: Bench, pairs: int, fractions: tuple[float, ...] = FRACTIONS
) -> dict[float, dict[str, float]]:
    """Metrics per fraction of the flat-out rate (1.0: the flat-out round)."""
    tag = bench.run_id()
    env = {
        "CHATCORE_TOPIC_PREFIX": f"bench-{tag}-",
        "CHATCORE_REDIS_PREFIX": f"bench:{tag}:",
        "CHATCORE_CASSANDRA_KEYSPACE": f"bench_{tag}",
        "CHATCORE_PARTITIONS": str(PARTITIONS),
    }
    out: dict[float, dict[str, float]] = {}
    try:
        async with bench.fleet(env) as fleet:
            target = await fleet.start_target("chatcore-production", timeout_s=300)
            workers = await fleet.start_groups(
                target, [2] * pairs, run_id=tag, what="production: connecting"
            )
            d = bench.duration_s
            top = out[1.0] = await measure_round(
                bench, fleet, target, workers, Round(duration_s=d, window=4, drain_s=3.0),
                what="production: maximum", profile_as="production",
            )  # fmt: skip
            best = top["max_per_s"] = sustained(top, members=2)
            for fraction in fractions:
                drain_s = await fleet.wait_drained(workers, timeout_s=180.0)
                rate = max(1.0, fraction * best)
                metrics = await measure_round(
                    bench, fleet, target, workers,
                    Round(duration_s=d, rate=rate, drain_s=3.0),
                    what=f"production: {fraction:.0%}",
                )  # fmt: skip
                metrics["max_per_s"] = best
                metrics["drain_before_s"] = drain_s
                out[fraction] = metrics
            await fleet.stop_workers(workers)
    finally:
        await _drop_topics(env["CHATCORE_TOPIC_PREFIX"])
        await anyio.to_thread.run_sync(
            _drop, env["CHATCORE_CASSANDRA_KEYSPACE"], env["CHATCORE_REDIS_PREFIX"]
        )
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
