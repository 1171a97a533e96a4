"""Each scenario at a tiny scale, end to end through real servers and load generators.

Benchmarks print figures; these only check that the harness works and what it
writes is sane (not how fast anything is).
"""

from __future__ import annotations

import pytest

from benchmarks.scenarios import direct, fanout, idle, ids, latency
from benchmarks.scenarios._common import Bench

pytestmark = pytest.mark.anyio

LOAD_METRICS = {
    "offered_per_s", "sent_per_s", "accepted_per_s", "delivered_per_s", "delivered_total",
    "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "server_cpu", "loadgen_cpu",
    "others_cpu", "server_rss_mib",
}  # fmt: skip


def _sane_load(m: dict[str, float], *, fanout: int, duration_s: float = 1.0) -> None:
    assert set(m) >= LOAD_METRICS
    assert m["errors"] == 0
    assert m["accepted_per_s"] > 0
    assert m["delivered_per_s"] > 0
    # every message reaches at most each member once (the sender's device included)
    assert m["delivered_total"] <= m["sent_per_s"] * duration_s * fanout + 1
    assert 0 < m["p50_ms"] <= m["p99_ms"] <= m["p999_ms"] <= m["max_ms"]
    assert m["server_cpu"] > 0
    assert m["server_rss_mib"] > 10


def test_ids_counts_both_generators() -> None:
    rates = ids.measure(20_000)
    assert rates["chatcore"] > 10_000
    assert rates["snowflake-id"] > 10_000
    assert 0 <= rates["peer_exhausted"] <= 20_000


@pytest.mark.parametrize("kind", idle.TARGETS)
async def test_idle_connections(bench: Bench, kind: str) -> None:
    m = await idle.measure(bench, kind, 20)
    assert m["connected"] == 20
    assert m["failed"] == 0
    assert m["rss_mib"] > m["rss_base_mib"] > 5
    assert m["kib_per_conn"] > 0
    assert m["connects_per_s"] > 0


@pytest.mark.parametrize("kind", direct.TARGETS)
async def test_direct_throughput(bench: Bench, kind: str) -> None:
    m = await direct.measure(bench, kind, pairs=3)
    _sane_load(m, fanout=2)
    assert m["offered_per_s"] == 0  # flat out


@pytest.mark.parametrize("kind", ["chatcore-memory", "socketio"])  # centrifugo: test_native.py
async def test_fanout_throughput(bench: Bench, kind: str) -> None:
    m = await fanout.measure(bench, kind, size=5, members=10)
    _sane_load(m, fanout=5)
    assert m["groups"] == 2
    # each accepted message reaches the group's five members
    assert m["delivered_per_s"] > m["accepted_per_s"]


@pytest.mark.parametrize("kind", ["chatcore-memory", "socketio"])
async def test_latency_rounds(bench: Bench, kind: str) -> None:
    by_fraction = await latency.measure(bench, kind, pairs=3, fractions=(0.5,))
    assert set(by_fraction) == {1.0, 0.5}
    top = by_fraction[1.0]["max_per_s"]
    assert top > 0
    for fraction in (0.5,):
        m = by_fraction[fraction]
        _sane_load(m, fanout=2)
        assert m["offered_per_s"] == pytest.approx(max(1.0, fraction * top))
        # a paced round sends what it offers, give or take the first and last send
        assert m["sent_per_s"] == pytest.approx(m["offered_per_s"], rel=0.3, abs=3)
