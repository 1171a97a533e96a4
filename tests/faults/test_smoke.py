"""The fault suite at smoke sizes on the real processes, so it cannot rot.

It starts its own Redis and Kafka with ``scripts/services`` on ports 26379/29092 (not
the shared ones) and stops them at the end; the full figures come from
``python -m benchmarks.faults`` (docs/reliability.md).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.faults.__main__ import run_all
from benchmarks.faults.scenarios import Context, Sizes
from benchmarks.faults.stack import Services

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def test_kafka_kill_gateway_restart_and_redis_loss_at_smoke_sizes(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `scripts/services install redis`")
    ctx = Context(Services(tmp_path / "services", 26379, 29092), tmp_path, Sizes.smoke())
    outcomes = await run_all(["kafka_kill", "gateway_restart", "redis_loss"], ctx, echo=False)
    by_name = {o.name: o for o in outcomes}
    for outcome in outcomes:
        assert outcome.passed, json.dumps(outcome.to_dict(), indent=1)
    kafka = by_name["kafka_kill"].figures
    assert kafka["acked"] > 0 and kafka["acked_lost"] == kafka["duplicated"] == 0
    restart = by_name["gateway_restart"].figures
    assert restart["resent_same_id"] == restart["resent_acked"] > 0
    assert (
        by_name["redis_loss"].figures["history_messages"] == by_name["redis_loss"].figures["acked"]
    )
