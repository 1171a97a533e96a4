"""The report, plots and CLI over synthetic results (no load generated here)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from benchmarks.report import goals, ratios, render_report
from benchmarks.results import Results, save_results
from benchmarks.runner import publish, rerender
from chatcore.cli import app

LOAD = {
    "offered_per_s": 0.0, "sent_per_s": 100.0, "accepted_per_s": 100.0,
    "delivered_per_s": 1000.0, "delivered_total": 5000.0, "errors": 0.0, "p50_ms": 2.0,
    "p90_ms": 5.0, "p99_ms": 9.0, "p999_ms": 12.0, "max_ms": 15.0, "server_cpu": 0.9,
    "loadgen_cpu": 0.5, "server_rss_mib": 50.0, "max_per_s": 100.0,
}  # fmt: skip


def _results() -> Results:
    r = Results(
        started="20260101T000000Z",
        quick=False,
        repeats=1,
        machine={"cpu": "Test CPU", "cores": "2", "fd_hard_limit": "20000", "pkg:x": "1.0"},
        pinning="server: taskset -c 0; load generators: taskset -c 1",
    )
    for size, ours, theirs in ((10, 4000.0, 1000.0), (256, 2000.0, 1000.0)):
        r.point("fanout", "chatcore-memory", {"group_size": size}).add(
            {**LOAD, "delivered_per_s": ours}
        )
        r.point("fanout", "socketio", {"group_size": size}).add({**LOAD, "delivered_per_s": theirs})
    for target, p99 in (("chatcore-memory", 12.0), ("chatcore-sqlite", 45.0), ("socketio", 6.0)):
        for fraction in (0.25, 0.5, 1.0):
            r.point("latency", target, {"fraction": fraction}).add(
                {**LOAD, "p99_ms": p99, "offered_per_s": 400.0 * fraction}
            )
    for n, kib in ((1000, 90.0), (19000, 30.0)):
        base = {"connected": float(n), "rss_base_mib": 40.0, "connects_per_s": 200.0}
        r.point("idle", "chatcore-memory", {"connections": n}).add(
            {**base, "rss_mib": 40 + n * kib / 1024, "kib_per_conn": kib}
        )
        r.point("idle", "websockets", {"connections": n}).add(
            {**base, "rss_mib": 40 + n * 15 / 1024, "kib_per_conn": 15.0}
        )
        r.point("idle", "uvicorn", {"connections": n}).add(
            {**base, "rss_mib": 40 + n * 18 / 1024, "kib_per_conn": 18.0}
        )
    for target, accepted in (
        ("chatcore-memory", 500.0),
        ("chatcore-sqlite", 90.0),
        ("socketio", 100.0),
    ):
        r.point("direct", target, {"pairs": 10}).add({**LOAD, "accepted_per_s": accepted})
    r.point("ids", "chatcore", {"count": 10}).add({"ids_per_s": 3.0e6})
    r.point("ids", "snowflake-id", {"count": 10}).add({"ids_per_s": 4.0e6, "exhausted": 5.0})
    return r


def test_goals_say_met_or_missed_and_by_how_much() -> None:
    r = _results()
    for fraction, p99 in ((1.0, 900.0), (0.5, 80.0)):
        r.point("production", "chatcore-production", {"fraction": fraction}).add(
            {**LOAD, "p99_ms": p99, "max_per_s": 1200.0}
        )
    by_name = {g.name: g for g in goals(r)}
    fan = by_name["fanout delivered msg/s vs python-socketio"]
    assert fan.met is False  # 4x at 10, but only 2x at 256
    assert "256" in fan.gap and "1.5x" in fan.gap
    assert by_name["p99 at half of max load, chatcore-memory"].met is True
    sqlite = by_name["p99 at half of max load, chatcore-sqlite"]
    assert sqlite.met is False and "1.5x over" in sqlite.gap  # 45 ms against 30
    idle = by_name["memory per idle connection"]
    assert idle.met is False and "2.5x over" in idle.gap  # 30 KiB against 12
    assert "19000" in idle.measured and "20000" in idle.measured
    assert by_name["1:1 accepted/s vs python-socketio, chatcore-memory"].met is True  # 5x
    assert by_name["1:1 accepted/s vs python-socketio, chatcore-sqlite"].met is False  # 0.9x
    assert by_name["real stack: sustained msg/s"].gap == "4.2x short"  # 1,200 against 5,000
    assert by_name["real stack: p99 at half of it"].met is True
    assert by_name["Snowflake ids/s on one thread"].met is True


def test_goals_without_data_are_unmeasured() -> None:
    empty = Results(started="t", quick=True, repeats=1, machine={}, pinning="")
    assert all(g.met is None for g in goals(empty))
    assert ratios(empty) == []


def test_ratios_are_chatcore_over_peer() -> None:
    found = {what: r for what, _, r in ratios(_results())}
    assert found["fanout, groups of 10: chatcore / python-socketio"] == 4.0
    assert found["idle connections (1000): chatcore / bare websockets"] == 6.0
    assert found["idle connections (1000): chatcore / bare ASGI on uvicorn"] == 5.0
    assert found["Snowflake ids/s: chatcore / snowflake-id"] == 0.75
    half = "direct chats, 50% of each one's maximum: chatcore-memory / python-socketio"
    assert found[half] == 2.0


def test_report_has_every_section_and_plot(tmp_path: Path) -> None:
    path = render_report(_results(), tmp_path)
    text = path.read_text()
    for title in ("## Goals", "## Ratios", "## Group fanout", "## Latency", "## Memory"):
        assert title in text
    for png in ("bench-fanout.png", "bench-latency.png", "bench-idle.png"):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "bench-production.png").exists()  # no production data
    assert "chatcore bench run fanout" in text


def _stages(scale: float) -> dict[str, float]:
    out: dict[str, float] = {}
    for stage, (mean, p50, p99) in {
        "logged": (3.0, 2.0, 9.0), "sequenced": (10.0, 8.0, 40.0),
        "stored": (30.0, 25.0, 90.0), "pushed": (14.0, 12.0, 60.0),
    }.items():  # fmt: skip
        out |= {
            f"stage_{stage}_count": 500.0,
            f"stage_{stage}_mean_ms": mean * scale,
            f"stage_{stage}_p50_ms": p50 * scale,
            f"stage_{stage}_p99_ms": p99 * scale,
        }
    return out


def test_report_shows_where_the_time_goes_and_worker_counts(tmp_path: Path) -> None:
    r = _results()
    for fraction, scale in ((1.0, 2.0), (0.5, 1.0)):
        r.point("production", "chatcore-production", {"fraction": fraction}).add(
            {**LOAD, "offered_per_s": 50.0 * fraction, **_stages(scale)}
        )
    for n in (1, 2, 4):
        r.point("production", "chatcore-workers", {"workers": n}).add(
            {
                **LOAD, **_stages(1.0), "workers": float(n), "workers_cpu": 0.3 * n,
                "busiest_worker_cpu": 0.3, "max_per_s": 100.0 * n,
            }
        )  # fmt: skip
    text = render_report(r, tmp_path).read_text()
    assert "### Where the time goes" in text
    assert "**chatcore-production, max (flat out)**" in text
    assert "**chatcore-production, 50% (25/s)**" in text
    assert "**gateway + 4 workers, flat out**" in text
    # flat out (scale 2): log → sequenced mean 20 - 6 = 14 ms, p50 16 - 4 = 12 ms
    assert "| log → sequenced | 14.0 | 12.0 | 16.0 | 80.0 | 500 |" in text
    assert "| sequenced → pushed | 4.0 | 4.0 | 12.0 | 60.0 | 500 |" in text
    assert "### Gateway and worker processes" in text
    assert "| 4 | 100 | 1000 | 400 | 2.0 | 9.0 | 90% | 120% | 30% |" in text
    assert "](bench-production-workers.png)" in text
    assert (tmp_path / "bench-production-workers.png").read_bytes().startswith(b"\x89PNG")


def test_rerender_and_publish(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_results(_results(), run / "results.json")
    report = rerender(run / "results.json")
    assert report == run / "report.md"
    docs = tmp_path / "docs"
    published = publish(run, docs=docs)
    assert "](../img/bench-fanout.png)" in published.read_text()
    assert (docs / "img" / "bench-fanout.png").exists()
    assert (docs / "benchmarks" / "results.json").exists()


def test_cli_rejects_unknown_scenarios_and_missing_files(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "run", "nonsense"])
    assert result.exit_code == 2
    assert "unknown scenarios" in result.output
    result = runner.invoke(app, ["bench", "report", str(tmp_path / "none.json")])
    assert result.exit_code == 2


def test_cli_runs_a_scenario_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "run", "ids", "--quick", "--repeats", "1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "report.md").read_text()
    assert "## Snowflake ids per second" in text
    assert (tmp_path / "results.json").exists()
