"""The real-stack scenario at a tiny scale, on the services of ``scripts/services start``."""

from __future__ import annotations

import pytest

from benchmarks.scenarios import production
from benchmarks.scenarios._common import Bench
from benchmarks.stages import STAGES
from tests.services import require

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def test_production_rounds_and_cleanup(bench: Bench) -> None:
    for service in ("kafka", "cassandra", "redis"):
        require(service)
    by_fraction = await production.measure(bench, pairs=2, fractions=(0.5,))
    assert set(by_fraction) == {1.0, 0.5}
    top = by_fraction[1.0]
    assert top["errors"] == 0
    assert top["accepted_per_s"] > 0
    assert top["delivered_per_s"] > 0
    assert 0 < top["max_per_s"] <= top["accepted_per_s"]
    for fraction in (0.5,):
        assert by_fraction[fraction]["offered_per_s"] == pytest.approx(
            max(1.0, fraction * top["max_per_s"])
        )
    for metrics in by_fraction.values():  # every stage of the one process, from /metrics
        for stage in STAGES:
            assert metrics[f"stage_{stage}_count"] > 0
            assert 0 <= metrics[f"stage_{stage}_p50_ms"] <= metrics[f"stage_{stage}_p99_ms"]


async def test_gateway_and_worker_processes(bench: Bench) -> None:
    for service in ("kafka", "cassandra", "redis"):
        require(service)
    by_count = await production.measure_workers(bench, pairs=2, counts=(1, 2))
    assert set(by_count) == {1, 2}
    for n, metrics in by_count.items():
        assert metrics["workers"] == n
        assert metrics["errors"] == 0
        assert metrics["accepted_per_s"] > 0
        assert metrics["delivered_per_s"] > 0
        assert metrics["workers_cpu"] > 0
        assert metrics["busiest_worker_cpu"] <= metrics["workers_cpu"]
        # logged on the gateway, the rest on the workers: every stage is scraped
        for stage in STAGES:
            assert metrics[f"stage_{stage}_count"] > 0


async def test_worker_counts_are_checked(bench: Bench) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await production.measure_workers(bench, pairs=2, counts=(0,))


async def test_aiokafka_raw_rate(bench: Bench) -> None:
    require("kafka")
    rates = await production.kafka_raw(bench, 500)
    assert rates["pipelined_per_s"] > 0
    assert rates["sequential_per_s"] > 0
