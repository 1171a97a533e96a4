"""The capacity model: the design's own table, sizing rules, bad input, bench figures."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.plan import Measured, Target, from_bench, plan, render, with_overrides


def test_the_design_example_reproduces_its_table() -> None:
    """1 B MAU -> 100 M connections -> ~870 k msg/s -> 1,000 gateways, ~45 PB in 5 years."""
    result = plan()
    assert result.figures["connections"] == pytest.approx(100e6)
    assert result.figures["peak_msg_s"] == pytest.approx(870e3, rel=0.01)
    assert result.tier("gateways").count == 1_000
    assert result.tier("gateways").binding.limit == "connections"
    assert result.figures["history_bytes"] / 1e15 == pytest.approx(45, rel=0.01)
    assert result.tier("cassandra nodes").binding.limit == "disk"


finite = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
shares = st.floats(min_value=1e-4, max_value=1.0)


@given(mau=st.floats(min_value=1e3, max_value=1e10), online=shares, dau=shares, msgs=finite)
def test_each_tier_covers_every_need_and_no_more(
    mau: float, online: float, dau: float, msgs: float
) -> None:
    result = plan(Target(mau=mau, online_share=online, dau_share=dau, messages_per_dau=msgs))
    for tier in result.tiers:
        largest = max(need.exact for need in tier.needs)
        assert tier.count >= largest - 1e-6
        assert tier.count == 1 or tier.count - 1 < largest
        assert 0 < tier.utilization <= 1 + 1e-9


@given(mau=st.floats(min_value=1e3, max_value=1e10), factor=st.floats(min_value=1, max_value=100))
def test_more_users_never_need_fewer_machines(mau: float, factor: float) -> None:
    small, large = plan(Target(mau=mau)), plan(Target(mau=mau * factor))
    for a, b in zip(small.tiers, large.tiers, strict=True):
        assert b.count >= a.count, a.name


def test_binds_first_is_the_tier_closest_to_its_capacity() -> None:
    result = plan(measured=Measured(connections_per_gateway=150_000))
    fullest = max(result.tiers, key=lambda tier: tier.binding.exact / tier.count)
    assert result.binds_first is fullest
    assert f"binds first: {fullest.name}" in render(result)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (lambda: Target(mau=-1), "mau must be a positive number"),
        (lambda: Target(online_share=1.5), "online_share is a share of MAU"),
        (lambda: Target(peak_factor=math.nan), "peak_factor must be a positive number"),
    ],
)
def test_bad_figures_are_refused(values: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(values())  # type: ignore[operator]


def test_overrides_are_checked_by_name_and_type() -> None:
    assert with_overrides(Measured(), {"kafka-replication": "2"}).kafka_replication == 2
    with pytest.raises(ValueError, match="unknown figure 'kafka_replicas'"):
        with_overrides(Measured(), {"kafka_replicas": "2"})
    with pytest.raises(ValueError, match="must be a number"):
        with_overrides(Target(), {"mau": "lots"})


def _point(scenario: str, target: str, params: dict[str, float], **median: float) -> object:
    return {"scenario": scenario, "target": target, "params": params, "median": median}


def test_bench_figures_become_measured_fields() -> None:
    results = {
        "points": [
            _point("idle", "chatcore-memory", {"connections": 1000}, kib_per_conn=40.0),
            _point("idle", "chatcore-memory", {"connections": 19000}, kib_per_conn=32.0),
            _point("idle", "uvicorn", {"connections": 19000}, kib_per_conn=1.0),
            _point("fanout", "chatcore-memory", {}, delivered_per_s=30_000.0, server_cpu=0.6),
            _point("fanout", "chatcore-memory", {}, delivered_per_s=40_000.0, server_cpu=1.0),
            _point("fanout", "socketio", {}, delivered_per_s=90_000.0, server_cpu=0.5),
            _point("production", "chatcore-production", {}, max_per_s=950.0),
        ]
    }
    derived = from_bench(results, gateway_memory_gib=4)
    assert derived == {
        "connections_per_gateway": 4 * 1024 * 1024 / 32.0,
        "deliveries_per_gateway_s": 50_000.0,
        "msgs_per_worker_s": 950.0,
    }
    with pytest.raises(ValueError, match="not a chatcore bench results file"):
        from_bench({"runs": []})


def test_the_published_report_plans(tmp_path: object) -> None:
    """The checked-in report's figures flow through the model end to end."""
    from pathlib import Path

    results = json.loads((Path(__file__).parents[2] / "docs/benchmarks/results.json").read_text())
    derived = from_bench(results)
    assert set(derived) == {
        "connections_per_gateway",
        "deliveries_per_gateway_s",
        "msgs_per_worker_s",
    }
    result = plan(measured=with_overrides(Measured(), {k: str(v) for k, v in derived.items()}))
    figures = result.figures
    by_connections = math.ceil(figures["connections"] / derived["connections_per_gateway"])
    by_deliveries = math.ceil(figures["peak_deliveries_s"] / derived["deliveries_per_gateway_s"])
    assert result.tier("gateways").count == max(by_connections, by_deliveries)
