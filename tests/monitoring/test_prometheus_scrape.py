"""A real Prometheus scrapes a running server: every series the dashboards query exists,
every dashboard query runs, and the alert rules are loaded."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # (no stubs in the lock; only tests read YAML)

from tests.e2e.conftest import embedded_settings, running, traffic
from tests.monitoring.dashboards import all_exprs, series_names
from tests.services import PROMETHEUS_URL, require

pytestmark = [pytest.mark.anyio, pytest.mark.services]


async def query(prom: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = (await prom.get(path, params=params)).json()
    assert answer["status"] == "success", answer
    return answer["data"]


async def test_prometheus_sees_every_series_the_dashboards_query(tmp_path: Path) -> None:
    require("prometheus")
    async with httpx.AsyncClient(base_url=PROMETHEUS_URL, timeout=10) as prom:
        config = yaml.safe_load((await query(prom, "/api/v1/status/config"))["yaml"])
        (scrape,) = [c for c in config["scrape_configs"] if c["job_name"] == "chatcore"]
        targets = Path(scrape["file_sd_configs"][0]["files"][0]).parent
        async with running(embedded_settings(tmp_path)) as server:
            await traffic(server)
            instance = server.http_url.removeprefix("http://")
            target = targets / f"test-{uuid.uuid4().hex}.json"
            target.write_text(json.dumps([{"targets": [instance]}]))
            try:
                # Three good scrapes (rate() needs two samples); targets are re-read every second.
                scraped = f'count_over_time(up{{instance="{instance}"}}[1m]) >= 3'
                with anyio.fail_after(60):
                    while not (await query(prom, "/api/v1/query", query=scraped))["result"]:
                        await anyio.sleep(0.5)
                for name in sorted(series_names(all_exprs())):
                    found = await query(
                        prom, "/api/v1/series", **{"match[]": f'{name}{{instance="{instance}"}}'}
                    )
                    assert found, f"Prometheus has no {name} from the server"
                for expr in all_exprs():
                    await query(prom, "/api/v1/query", query=expr.replace("$__rate_interval", "1m"))
            finally:
                target.unlink()
        groups = (await query(prom, "/api/v1/rules"))["groups"]
        loaded = {rule["name"] for group in groups for rule in group["rules"]}
        assert {
            "ChatcoreDeliveryLatencyHigh",
            "ChatcoreLogLagHigh",
            "ChatcoreConnectionsDropped",
            "ChatcoreMessageLoss",
        } <= loaded
