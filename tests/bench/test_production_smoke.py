"""The real-stack scenario at a tiny scale, on the services of ``scripts/services start``."""

from __future__ import annotations

import pytest

from benchmarks.scenarios import production
from benchmarks.scenarios._common import Bench
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


async def test_aiokafka_raw_rate(bench: Bench) -> None:
    require("kafka")
    rates = await production.kafka_raw(bench, 500)
    assert rates["pipelined_per_s"] > 0
    assert rates["sequential_per_s"] > 0
