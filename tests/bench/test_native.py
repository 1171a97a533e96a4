"""The native programs of the harness: the Go load generator and the Centrifugo peer.

The Go load generator is built once into the cache (``benchmarks/loadgen-go/build.sh``,
about a minute the first time) and drives chatcore in the default run. Centrifugo takes
several minutes to build the first time, so its smoke tests run when the binary is
already in the cache or when ``CHATCORE_BENCH_CENTRIFUGO=1`` asks to build it
(docs/decisions.md); otherwise they are skipped, with that reason in the summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks.builds import CENTRIFUGO_VERSION, cache_dir
from benchmarks.drivers import CentrifugoDriver
from benchmarks.histogram import LatencyHistogram
from benchmarks.loadgen import RoundResult, decode_report
from benchmarks.peers import centrifugo
from benchmarks.report import ratios, render_report
from benchmarks.scenarios import direct, fanout, storm
from benchmarks.scenarios._common import Bench
from benchmarks.targets import SECRET
from chatcore.server.auth import TokenAuthority

REPO = Path(__file__).resolve().parents[2]
CENTRIFUGO_BIN = cache_dir() / f"centrifugo-{CENTRIFUGO_VERSION}" / "centrifugo"
needs_centrifugo = pytest.mark.skipif(
    not CENTRIFUGO_BIN.is_file() and os.environ.get("CHATCORE_BENCH_CENTRIFUGO") != "1",
    reason=f"Centrifugo is not built ({CENTRIFUGO_BIN}); build it with "
    "benchmarks/peers/centrifugo/build.sh or set CHATCORE_BENCH_CENTRIFUGO=1 (minutes, once)",
)


def _sane_fanout(m: dict[str, float], *, members: int) -> None:
    assert m["errors"] == 0
    assert m["accepted_per_s"] > 0
    # each accepted message reaches the group's members, the sender's own copy included
    assert m["delivered_per_s"] > m["accepted_per_s"]
    assert m["delivered_total"] <= m["sent_per_s"] * 1.0 * members + 1
    assert 0 < m["p50_ms"] <= m["p99_ms"] <= m["max_ms"]
    assert m["server_cpu"] > 0
    assert m["delivered_per_cpu_s"] > 0
    assert m["loadgen_cpu"] > 0


def _sane_paced(m: dict[str, float], *, deliveries: float) -> None:
    """The paced round after the flat-out one: it offers ``deliveries``/s to groups of 5."""
    assert m["paced_offered_per_s"] == pytest.approx(deliveries / 5)
    assert m["paced_errors"] == 0
    # a paced round sends what it offers, give or take the first and last send
    assert m["paced_sent_per_s"] == pytest.approx(m["paced_offered_per_s"], rel=0.3, abs=3)
    assert m["paced_delivered_total"] <= m["paced_sent_per_s"] * 5 + 5
    assert m["paced_delivered_per_cpu_s"] > 0
    assert 0 < m["paced_p50_ms"] <= m["paced_p99_ms"]


@pytest.mark.anyio
async def test_go_loadgen_drives_chatcore_fanout(bench: Bench) -> None:
    bench.loadgen = "go"
    assert bench.loadgen_for("chatcore-memory") == "go"
    assert bench.loadgen_for("socketio") == "python"  # the Go generator cannot speak it
    m = await fanout.measure(bench, "chatcore-memory", size=5, members=10, paced_deliveries=200)
    _sane_fanout(m, members=5)
    assert m["groups"] == 2
    _sane_paced(m, deliveries=200)


@pytest.mark.anyio
async def test_go_loadgen_drives_chatcore_direct_chats(bench: Bench) -> None:
    bench.loadgen = "go"
    m = await direct.measure(bench, "chatcore-memory", pairs=3)
    assert m["accepted_per_s"] > 0
    assert m["errors"] == 0
    # each accepted message reaches both members of its direct chat
    assert m["delivered_per_s"] > m["accepted_per_s"]


@needs_centrifugo
@pytest.mark.anyio
@pytest.mark.parametrize("loadgen", ["go", "python"])
async def test_centrifugo_fanout(bench: Bench, loadgen: str) -> None:
    bench.loadgen = loadgen
    m = await fanout.measure(bench, "centrifugo", size=5, members=10, paced_deliveries=200)
    _sane_fanout(m, members=5)
    _sane_paced(m, deliveries=200)


def test_centrifugo_config_allows_clients_in_the_namespace_only(tmp_path: Path) -> None:
    path = centrifugo.write_config(tmp_path, 8123, SECRET)
    config = json.loads(path.read_text())
    assert config["http_server"] == {"address": "127.0.0.1", "port": 8123}
    assert config["engine"] == {"type": "memory"}
    assert config["client"]["token"]["hmac_secret_key"] == SECRET
    [namespace] = config["channel"]["namespaces"]
    assert namespace["name"] == centrifugo.NAMESPACE
    assert namespace["allow_subscribe_for_client"] is True
    assert namespace["allow_publish_for_client"] is True
    assert "allow_subscribe_for_client" not in config["channel"]  # nothing outside it
    assert centrifugo.command(Path("/bin/c"), path) == ["/bin/c", "--config", str(path)]
    assert 0 < centrifugo.free_port() < 65536


def test_python_centrifugo_driver_reads_batched_frames() -> None:
    received: list[str] = []
    driver = CentrifugoDriver("ws://x", "u", TokenAuthority(SECRET), "127.0.0.1", received.append)
    frame = (
        b'{"push":{"channel":"bench:r","pub":{"data":{"b":"1:x"}}}}\n'
        b'{"push":{"channel":"bench:r","pub":{"data":{"b":"2:x"}}}}'
    )
    assert driver.handle(frame) is False
    assert received == ["1:x", "2:x"]
    assert driver.handle(b"{}") is True  # a ping
    assert driver.handle(b'{"id":7,"publish":{}}') is False  # a reply nobody waits for
    assert received == ["1:x", "2:x"]


def test_go_results_merge_into_the_latency_histogram() -> None:
    line = json.dumps(
        {
            "type": "result",
            "sent": 3,
            "accepted": 3,
            "received": 3,
            "received_total": 3,
            "duration_s": 1.0,
            "cpu_s": 0.1,
            "latency": "",
            "errors": 0,
            "error": "",
            "latency_counts": [[1000, 2], [250000, 1]],
        }
    ).encode()
    result = decode_report(line)
    assert isinstance(result, RoundResult)
    h = LatencyHistogram()
    h.add_encoded(result.latency)
    h.add_counts(result.latency_counts)
    h.add_counts([(5, 0)])  # an empty bucket adds nothing
    assert h.count == 3
    assert h.percentile_ms(50) == pytest.approx(1.0, rel=0.01)
    assert h.max_ms() == pytest.approx(250.0, rel=0.01)


def test_build_scripts_never_rebuild_a_cached_binary(tmp_path: Path) -> None:
    env = {**os.environ, "CHATCORE_BENCH_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    fake = tmp_path / f"centrifugo-{CENTRIFUGO_VERSION}" / "centrifugo"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    script = REPO / "benchmarks" / "peers" / "centrifugo" / "build.sh"
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(fake)
    assert done.stderr == ""  # nothing built


def test_report_shows_centrifugo_side_by_side(bench: Bench, tmp_path: Path) -> None:
    results = bench.results
    base = {"p50_ms": 1.0, "p90_ms": 2.0, "p99_ms": 4.0, "p999_ms": 5.0, "max_ms": 6.0,
            "accepted_per_s": 100.0, "server_cpu": 1.0, "loadgen_cpu": 0.5}  # fmt: skip
    for target, delivered, per_cpu in (("chatcore-memory", 1000.0, 1000.0),
                                       ("centrifugo", 40_000.0, 50_000.0)):  # fmt: skip
        point = results.point("fanout", target, {"group_size": 10, "loadgen": "go"})
        paced = {"paced_offered_per_s": 500.0, "paced_delivered_per_s": 5000.0,
                 "paced_p99_ms": 3.0, "paced_server_cpu": 0.2,
                 "paced_delivered_per_cpu_s": per_cpu / 2}  # fmt: skip
        point.add({**base, "delivered_per_s": delivered, "delivered_per_cpu_s": per_cpu, **paced})
    found = {(what, metric): r for what, metric, r in ratios(results)}
    key = "fanout, groups of 10 (go load gen): chatcore / Centrifugo"
    assert found[(key, "delivered_per_cpu_s")] == pytest.approx(0.02)
    assert found[(key, "delivered_per_s")] == pytest.approx(0.025)
    text = render_report(results, tmp_path).read_text()
    assert "delivered / server CPU-s" in text
    assert "| 10 | centrifugo | go | 40.0 k | 50.0 k | 4.0 |" in text
    assert "fanout deliveries per server CPU-second vs Centrifugo" in text
    paced_key = "fanout, groups of 10 (go load gen), paced: chatcore / Centrifugo"
    assert found[(paced_key, "server CPU µs per delivery")] == pytest.approx(50.0)
    assert "| 10 | chatcore-memory | go | 5000 | 5000 | 2000.0 | 3.0 | 20% |" in text
    assert (
        "| fanout server CPU per delivery at an equal paced load vs Centrifugo | ≤ 2x | 10: 50.00x"
        in text
    )


@pytest.mark.anyio
@pytest.mark.parametrize("kind", storm.TARGETS)
async def test_reconnect_storm(bench: Bench, kind: str) -> None:
    m = await storm.measure(bench, kind, 20)
    assert m["connected"] == 20
    assert m["reconnected"] == 20  # every client back after the restart
    assert m["failed"] == 0
    assert m["attempts"] >= 20
    assert m["restart_s"] > 0
    assert m["back_s"] > 0
    assert m["reconnects_per_s"] > 0
    # a client's time includes the restart: no earlier than the server was down
    assert 0 < m["p50_ms"] <= m["p99_ms"] <= m["max_ms"]
    assert m["storm_s"] >= m["back_s"]


def test_report_shows_the_storm_against_bare_uvicorn(bench: Bench, tmp_path: Path) -> None:
    results = bench.results
    base = {"connects_per_s": 900.0, "restart_s": 1.5, "back_s": 1.0, "p50_ms": 1800.0,
            "p99_ms": 2400.0, "failed": 0.0}  # fmt: skip
    for target, rate in (("chatcore-memory", 1000.0), ("uvicorn", 4000.0)):
        results.point("storm", target, {"connections": 1000}).add(
            {**base, "reconnects_per_s": rate}
        )
    found = {(what, metric): r for what, metric, r in ratios(results)}
    key = "reconnect storm (1000): chatcore / bare ASGI on uvicorn"
    assert found[(key, "reconnects_per_s")] == pytest.approx(0.25)
    text = render_report(results, tmp_path).read_text()
    assert "## Reconnect storm after a restart" in text
    assert "| chatcore-memory | 1000 | 900 | 1.5 | 1.00 | 1000 | 1800 / 2400 | 0 |" in text
    goal = "| reconnects/s in a storm, hello + sync, vs bare uvicorn | ≥ 0.5x | 1000 clients: 0.25x"
    assert goal in text
    assert "2.0x short at 1000 clients" in text


def test_go_loadgen_unit_tests() -> None:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    done = subprocess.run(
        ["nice", "-n", "19", go, "test", "./..."],
        cwd=REPO / "benchmarks" / "loadgen-go",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
