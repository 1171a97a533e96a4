"""The harness's pure parts: histograms, results, pinning, the worker protocol, profiles."""

from __future__ import annotations

import msgspec
import pytest

from benchmarks.histogram import LatencyHistogram
from benchmarks.loadgen import (
    Job,
    Progress,
    Ready,
    Round,
    RoundResult,
    Stop,
    _Counters,
    decode_report,
    encode_command,
)
from benchmarks.profiling import summarize
from benchmarks.results import Results, median_of
from benchmarks.scenarios._common import sustained
from benchmarks.system import CpuPlan, process_usage, source_ips


def test_histogram_percentiles_and_merge_across_processes() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for ms in range(1, 101):  # 1..100 ms
        a.record_ns(ms * 1_000_000)
    b.record_ns(5_000_000_000)  # one 5 s outlier
    merged = LatencyHistogram()
    merged.add_encoded(a.encode())
    merged.add_encoded(b.encode())
    merged.add_encoded("")
    assert merged.count == 101
    assert merged.percentile_ms(50) == pytest.approx(51, rel=0.01)
    assert merged.percentile_ms(99) == pytest.approx(100, rel=0.01)
    assert merged.max_ms() == pytest.approx(5000, rel=0.01)
    summary = merged.summary()
    assert summary["p50_ms"] <= summary["p99_ms"] <= summary["p999_ms"] <= summary["max_ms"]


def test_empty_histogram_and_clamping() -> None:
    h = LatencyHistogram()
    assert h.summary()["p99_ms"] == 0
    h.record_ns(-5)  # clock skew: clamped to the smallest value, never an error
    h.record_ns(10**15)
    assert h.count == 2
    assert h.max_ms() == pytest.approx(120_000, rel=0.01)


def test_results_medians_points_and_json_round_trip(tmp_path: object) -> None:
    assert median_of([{"x": 1.0, "y": 5.0}, {"x": 3.0}, {"x": 2.0, "y": 7.0}]) == {
        "x": 2.0,
        "y": 6.0,
    }
    results = Results(started="t", quick=True, repeats=2, machine={}, pinning="")
    point = results.point("fanout", "socketio", {"group_size": 10})
    point.add({"delivered_per_s": 10.0})
    point.add({"delivered_per_s": 30.0})
    assert results.point("fanout", "socketio", {"group_size": 10}) is point
    assert results.point("fanout", "socketio", {"group_size": 50}) is not point
    assert point.median == {"delivered_per_s": 20.0}
    assert results.select("fanout", "chatcore-memory") == []
    again = msgspec.json.decode(msgspec.json.encode(results), type=Results)
    assert again == results


def test_cpu_plan_pins_server_and_load_apart() -> None:
    plan = CpuPlan(0, (1,))
    assert plan.server_prefix() == ["taskset", "-c", "0"]
    assert plan.load_prefix(0) == plan.load_prefix(3) == ["taskset", "-c", "1"]
    assert CpuPlan(None, ()).server_prefix() == []
    assert CpuPlan(None, ()).load_prefix(0) == []
    assert "not pinned" in CpuPlan(None, ()).describe()
    assert CpuPlan.detect(pin=False).server_core is None
    niced = CpuPlan(0, (1,), nice=-5)
    assert niced.server_prefix() == ["nice", "-n", "-5", "taskset", "-c", "0"]
    assert niced.load_prefix(1)[:3] == ["nice", "-n", "-5"]
    assert "nice -n -5" in niced.describe()


def test_source_ips_stay_under_the_ephemeral_range() -> None:
    assert source_ips(1) == ["127.0.0.1"]
    assert source_ips(20_000) == ["127.0.0.1"]
    assert source_ips(20_001) == ["127.0.0.1", "127.0.0.2"]
    assert len(source_ips(50_000)) == 3


def test_process_usage_of_this_process() -> None:
    import os

    usage = process_usage(os.getpid())
    assert usage.rss_bytes > 1024 * 1024
    assert usage.cpu_s > 0
    with pytest.raises(OSError):
        process_usage(2**22 + 12345)


def test_worker_protocol_round_trips() -> None:
    job = Job(target="socketio", url="ws://x/ws", run_id="r", groups=[2, 2])
    assert msgspec.json.decode(encode_command(job), type=Job) == job
    assert encode_command(Round(duration_s=1.0)).endswith(b"\n")
    assert b'"type":"stop"' in encode_command(Stop())
    for report in (
        Progress(connected=1, failed=0, sent=2, received=3),
        Ready(connected=4, failed=0, rooms=2, connect_s=0.5),
        RoundResult(
            sent=1,
            accepted=1,
            received=2,
            received_total=2,
            duration_s=1.0,
            cpu_s=0.1,
            latency="",
            errors=0,
        ),
    ):
        assert decode_report(msgspec.json.encode(report)) == report
    with pytest.raises(msgspec.DecodeError):
        decode_report(b'{"type":"nonsense"}')


def test_counters_count_only_this_rounds_messages() -> None:
    c = _Counters(round_start_ns=1_000, round_end_ns=2**62)
    c.on_message("500:xx")  # sent before the round: ignored
    c.on_message("not a timestamp")
    c.on_message("1500:xx")
    assert (c.received, c.received_total, c.latency.count) == (1, 1, 1)
    c.round_end_ns = 0  # past the window: still a latency sample, not a delivery in time
    c.on_message("1600:xx")
    assert (c.received, c.received_total, c.latency.count) == (1, 2, 2)


def test_sustained_is_limited_by_deliveries() -> None:
    assert sustained({"accepted_per_s": 100.0, "delivered_per_s": 150.0}, members=2) == 75.0
    assert sustained({"accepted_per_s": 100.0, "delivered_per_s": 400.0}, members=2) == 100.0


def test_profile_summary_shares() -> None:
    folded = "\n".join(
        [
            "main (a.py:1);loop (a.py:2);encode (b.py:3) 30",
            "main (a.py:1);loop (a.py:2);send (c.py:4) 10",
            "main (a.py:1);idle (a.py:9) 60",
            "garbage",
        ]
    )
    profile = summarize(folded, scenario="s", target="t")
    assert profile.samples == 100
    assert profile.self_top[0] == ("idle (a.py:9)", 60.0)
    assert ("encode (b.py:3)", 30.0) in profile.self_top
    assert ("loop (a.py:2)", 40.0) in profile.inclusive_top
    assert all(not name.startswith("main (") for name, _ in profile.inclusive_top)
    assert summarize("", scenario="s", target="t").samples == 0


def test_the_cli_offers_every_scenario_of_the_runner() -> None:
    from benchmarks.runner import SCENARIOS
    from chatcore.bench import SCENARIO_NAMES

    assert tuple(SCENARIOS) == SCENARIO_NAMES
