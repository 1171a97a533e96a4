"""Per-stage quantiles from two Prometheus scrapes (benchmarks.stages)."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from benchmarks.stages import StageHistogram, parse_stages, stage_deltas, stage_metrics
from chatcore.server.metrics import LATENCY_BUCKETS, ServerMetrics


def _text(metrics: ServerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_parse_reads_every_stage_of_a_real_scrape() -> None:
    metrics = ServerMetrics()
    metrics.stage_done("logged", [1000, 1000], 1003)  # two of 3 ms
    stages = parse_stages(_text(metrics))
    assert set(stages) == {"logged", "sequenced", "stored", "pushed"}
    logged = stages["logged"]
    assert list(logged.bounds) == [*LATENCY_BUCKETS, float("inf")]
    assert logged.count == 2
    assert logged.sum_s == pytest.approx(0.006)
    assert stages["pushed"].count == 0
    assert stages["pushed"].quantile(0.5) is None


def test_deltas_count_only_what_happened_between_the_scrapes() -> None:
    metrics = ServerMetrics()
    metrics.stage_done("sequenced", [0] * 100, 900)  # before: 100 of 900 ms
    before = _text(metrics)
    metrics.stage_done("sequenced", [0] * 99, 2)  # the round: 99 of 2 ms, one of 40 ms
    metrics.stage_done("sequenced", [0], 40)
    after = _text(metrics)
    seq = stage_deltas([before], [after])["sequenced"]
    assert seq.count == 100
    assert seq.mean() == pytest.approx((99 * 0.002 + 0.04) / 100)
    p50 = seq.quantile(0.5)
    assert p50 is not None and 0.001 < p50 <= 0.0025  # not the 900 ms of before
    p99 = seq.quantile(0.99)
    assert p99 is not None and p99 <= 0.0025
    p100 = seq.quantile(1.0)
    assert p100 is not None and 0.025 < p100 <= 0.05


def test_deltas_sum_over_processes() -> None:
    gateway, worker = ServerMetrics(), ServerMetrics()
    before = [_text(gateway), _text(worker)]
    gateway.stage_done("logged", [0] * 10, 3)
    worker.stage_done("stored", [0] * 5, 20)
    worker.stage_done("logged", [0] * 10, 3)  # a stage two processes run: summed
    found = stage_deltas(before, [_text(gateway), _text(worker)])
    assert found["logged"].count == 20
    assert found["stored"].count == 5
    assert found["pushed"].count == 0
    flat = stage_metrics(found)
    assert flat["stage_logged_count"] == 20
    assert flat["stage_logged_mean_ms"] == pytest.approx(3.0)
    assert 2.5 < flat["stage_logged_p50_ms"] <= 5.0
    assert 10 < flat["stage_stored_p99_ms"] <= 25
    assert "stage_pushed_p50_ms" not in flat  # no observations: no figure


def test_quantile_interpolates_inside_the_bucket() -> None:
    h = StageHistogram(
        bounds=(0.01, 0.1, float("inf")), cumulative=(0, 10, 10), sum_s=0.5, count=10
    )
    assert h.quantile(0.5) == pytest.approx(0.055)
    overflow = StageHistogram(bounds=(0.01, float("inf")), cumulative=(1, 10), sum_s=9, count=10)
    assert overflow.quantile(0.99) == 0.01  # past the last bound: the last finite bound


def test_bad_input_is_refused() -> None:
    metrics = ServerMetrics()
    metrics.stage_done("logged", [0], 5)
    later = _text(metrics)
    restarted = _text(ServerMetrics())
    with pytest.raises(ValueError, match="went down"):
        stage_deltas([later], [restarted])
    with pytest.raises(ValueError, match="scrapes before"):
        stage_deltas([later], [])
    h = parse_stages(later)["logged"]
    other = StageHistogram(bounds=(1.0, float("inf")), cumulative=(0, 0), sum_s=0, count=0)
    with pytest.raises(ValueError, match="bounds differ"):
        h.plus(other)
    with pytest.raises(ValueError, match="between 0 and 1"):
        h.quantile(1.5)
    with pytest.raises(ValueError):
        parse_stages('chatcore_stage_latency_seconds_bucket{stage="logged" garbage')
