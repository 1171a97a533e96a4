"""``/metrics`` after real traffic: every pipeline series the dashboards read is there."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningServer, traffic

pytestmark = pytest.mark.anyio


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_pipeline_series_count_real_traffic(server: RunningServer) -> None:
    await traffic(server)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        found = samples((await http.get("/metrics")).text)
    for stage in ("logged", "sequenced", "stored", "pushed"):
        assert found[("chatcore_stage_latency_seconds_count", (("stage", stage),))] >= 1, stage
    assert found[("chatcore_store_write_seconds_count", (("store", "messages"),))] >= 1
    assert found[("chatcore_store_write_seconds_count", (("store", "receipts"),))] >= 1
    assert found[("chatcore_presence_update_seconds_count", ())] >= 2
    assert found[("chatcore_receipt_delivery_seconds_count", ())] >= 1
    assert found[("chatcore_sequence_gaps_total", (("where", "history"),))] == 0
    assert ("chatcore_offline_pending", ()) in found
