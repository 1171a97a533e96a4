"""The Grafana dashboards: generated, valid against Grafana's schema types, and reading
only series chatcore exposes."""

from __future__ import annotations

import json

from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from chatcore.server.metrics import ServerMetrics
from tests.monitoring.dashboards import DASHBOARD_FILES, all_exprs, generator, series_names


def test_the_checked_in_json_is_what_the_generator_writes() -> None:
    module = generator()
    assert {f.name for f in DASHBOARD_FILES} == set(module.DASHBOARDS)
    for f in DASHBOARD_FILES:
        assert f.read_text() == module.render(*module.DASHBOARDS[f.name]), (
            f"{f.name} is stale: run python examples/deploy/monitoring/dashboards.py"
        )


def test_each_dashboard_round_trips_through_grafanas_schema_types() -> None:
    for f in DASHBOARD_FILES:
        data = json.loads(f.read_text())
        decoded = Dashboard.from_json(data)
        again = json.loads(json.dumps(decoded, cls=JSONEncoder))
        assert again == data, f.name
        assert decoded.uid and decoded.title
        assert all(p.get("type") for p in data["panels"])


def exposed_series() -> set[str]:
    """The series names ``/metrics`` can hold, labelled children or not."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        f"{family.name}{suffix}"
        for family in ServerMetrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_every_queried_series_is_one_the_server_exposes() -> None:
    wanted = series_names(all_exprs())
    assert {"chatcore_delivery_latency_seconds_bucket", "chatcore_connections"} <= wanted
    assert not wanted - exposed_series(), "dashboards read series nobody exposes"
