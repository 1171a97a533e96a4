"""The overload scenario at a tiny scale, through real servers and load generators,
and the refusal counting of both load generators.

Figures only come from ``chatcore bench run overload``; these check the harness.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.loadgen import RoundResult, decode_report
from benchmarks.plots import PLOTS
from benchmarks.report import render_report
from benchmarks.scenarios import overload
from benchmarks.scenarios._common import Bench

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("loadgen", ["python", "go"])
async def test_overload_rounds_on_both_series(bench: Bench, loadgen: str, tmp_path: Path) -> None:
    bench.loadgen = loadgen
    for series in overload.TARGETS:
        found = await overload.measure(bench, series, group_size=5, groups=2, multiples=(0.5, 2.0))
        assert set(found) == {0.0, 0.5, 2.0}
        top = found[0.0]["max_per_s"]
        assert top > 0
        for multiple in (0.5, 2.0):
            m = found[multiple]
            assert m["errors"] == 0  # a refusal is no error
            assert m["refused_per_s"] >= 0
            assert m["offered_per_s"] == pytest.approx(multiple * top)
            # a paced round sends what it offers; an answer may come after the round
            assert m["sent_per_s"] == pytest.approx(m["offered_per_s"], rel=0.3, abs=3)
            assert 0 < m["accepted_per_s"] + m["refused_per_s"] <= m["sent_per_s"]
            assert m["delivered_per_s"] > 0
            assert 0 < m["p50_ms"] <= m["p99_ms"]
            point = bench.results.point("overload", series, {"multiple": multiple})
            point.params["group_size"] = 5
            point.add(m)
    report = render_report(bench.results, tmp_path).read_text()
    assert "## Past saturation" in report and "refused/s" in report
    assert (tmp_path / PLOTS["overload"]).is_file()


def test_go_results_carry_refusals() -> None:
    line = {"type": "result", "sent": 5, "accepted": 3, "received": 3, "received_total": 3,
            "duration_s": 1.0, "cpu_s": 0.1, "latency": "", "errors": 0, "error": "",
            "refused": 2}  # fmt: skip
    result = decode_report(json.dumps(line).encode())
    assert isinstance(result, RoundResult) and result.refused == 2
    del line["refused"]  # an older generator: none counted
    result = decode_report(json.dumps(line).encode())
    assert isinstance(result, RoundResult) and result.refused == 0
