"""What every scenario shares: the run's context and one measured round."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import Progress

from benchmarks.fleet import Fleet, Target, Worker
from benchmarks.histogram import LatencyHistogram
from benchmarks.loadgen import Round
from benchmarks.profiling import ProfileRecorder
from benchmarks.results import Results
from benchmarks.system import CpuPlan, machine_busy_s

__all__ = ["GO_TARGETS", "Bench", "measure_round", "start_wire", "sustained"]

GO_TARGETS = frozenset(
    {
        "chatcore-memory",
        "chatcore-memory-asgi",
        "chatcore-memory-granian",
        "chatcore-sqlite",
        "chatcore-sqlite-asgi",
        "chatcore-production",
        "centrifugo",
    }
)
"""The targets the Go load generator speaks to (the others need the Python one)."""


@dataclass
class Bench:
    """The context of one ``chatcore bench run``."""

    results: Results
    plan: CpuPlan
    out: Path
    """Folder of this run: results.json, logs/, data/, profiles/."""
    progress: Progress
    quick: bool = False
    repeats: int = 3
    profile: bool = False
    """Sample the target with py-spy during the flat-out rounds."""
    duration_s: float = 5.0
    """Length of one measured round."""
    env: dict[str, str] = field(default_factory=dict)
    loadgen: str = "python"
    """The load generator of the scenarios that can use either: ``python`` or ``go``."""
    centrifugo: bool = True
    """Whether the fanout scenario measures Centrifugo too (it needs the Go toolchain)."""

    def fleet(self, env: dict[str, str] | None = None) -> Fleet:
        return Fleet(self.plan, self.out / "logs", self.progress, env={**self.env, **(env or {})})

    def loadgen_for(self, kind: str) -> str:
        """The load generator that drives ``kind``: ``go`` when asked for and it can
        (chatcore and Centrifugo), else ``python``."""
        return "go" if self.loadgen == "go" and kind in GO_TARGETS else "python"

    def run_id(self) -> str:
        """A fresh prefix for users and rooms."""
        return f"b{secrets.token_hex(3)}"

    def data_dir(self) -> Path:
        """A fresh, empty folder for a SQLite target."""
        path = self.out / "data" / f"{time.monotonic_ns()}"
        path.mkdir(parents=True)
        return path


async def start_wire(
    bench: Bench,
    fleet: Fleet,
    kind: str,
    groups: list[int],
    *,
    what: str,
    senders_per_group: int = 1,
) -> tuple[Target, list[Worker]]:
    """Start ``kind`` (a SQLite target on a fresh folder) and one load generator that
    joins it with ``groups`` (sizes; 2 is a direct chat), chatcore driven over the wire
    by ``bench.loadgen_for(kind)``; ``senders_per_group`` members of each group send."""
    data = bench.data_dir() if kind.startswith("chatcore-sqlite") else None
    target = await fleet.start_target(kind, data=data)
    workers = await fleet.start_groups(
        target,
        groups,
        run_id=bench.run_id(),
        what=what,
        client="wire",
        loadgen=bench.loadgen_for(kind),
        senders_per_group=senders_per_group,
    )
    return target, workers


async def measure_round(
    bench: Bench,
    fleet: Fleet,
    target: Target,
    workers: Sequence[Worker],
    spec: Round,
    *,
    what: str,
    profile_as: str | None = None,
) -> dict[str, float]:
    """Run one round; throughput, latency, and the CPU (in cores) of the server, of the
    load generators and of every other process on the machine (noise).

    ``profile_as``: a scenario name to sample the server under (with ``bench.profile``).
    """
    recorder = None
    if bench.profile and profile_as is not None:
        (bench.out / "profiles").mkdir(parents=True, exist_ok=True)
        output = bench.out / "profiles" / f"{profile_as}-{target.kind}-{time.monotonic_ns()}.txt"
        recorder = ProfileRecorder(target.process.pid, output, duration_s=spec.duration_s)
        await recorder.start()
    before = target.usage()
    busy_before = machine_busy_s()
    started = time.monotonic()
    outcomes = await fleet.run_round(workers, spec, what=what)
    elapsed = time.monotonic() - started
    after = target.usage()
    busy = (machine_busy_s() - busy_before) / elapsed
    if recorder is not None:
        found = await recorder.finish(profile_as or "", target.kind)
        if found is not None:
            bench.results.profiles.append(found)
    latency = LatencyHistogram()
    for outcome in outcomes:
        latency.add_encoded(outcome.latency)
        latency.add_counts(outcome.latency_counts)
    d = spec.duration_s
    summary = latency.summary()
    server_cpu_s = after.cpu_s - before.cpu_s
    server_cpu = server_cpu_s / elapsed
    delivered_total = float(sum(o.received_total for o in outcomes))
    loadgen_cpu = sum(o.cpu_s for o in outcomes) / elapsed
    return {
        "offered_per_s": spec.rate,
        "sent_per_s": sum(o.sent for o in outcomes) / d,
        "accepted_per_s": sum(o.accepted for o in outcomes) / d,
        "refused_per_s": sum(o.refused for o in outcomes) / d,
        "delivered_per_s": sum(o.received for o in outcomes) / d,
        "delivered_total": delivered_total,
        "delivered_per_cpu_s": delivered_total / server_cpu_s if server_cpu_s > 0 else 0.0,
        "errors": float(sum(o.errors for o in outcomes)),
        "p50_ms": summary["p50_ms"],
        "p90_ms": summary["p90_ms"],
        "p99_ms": summary["p99_ms"],
        "p999_ms": summary["p999_ms"],
        "max_ms": summary["max_ms"],
        "server_cpu": server_cpu,
        "loadgen_cpu": loadgen_cpu,
        "others_cpu": max(0.0, busy - server_cpu - loadgen_cpu),
        "server_rss_mib": after.rss_bytes / 2**20,
    }


def sustained(metrics: dict[str, float], *, members: int) -> float:
    """Messages per second both accepted and delivered to all ``members`` of their chat."""
    return min(metrics["accepted_per_s"], metrics["delivered_per_s"] / members)
