"""The soak's judgement, on made-up samples: warm-up ignored, growth after it caught."""

from __future__ import annotations

import math

from benchmarks.faults.overload import ProcSample
from benchmarks.faults.soak import SoakSample, verdict


def run(
    rss: list[int], *, fds_extra: int = 0, tasks_extra: int = 0, threads: int = 6
) -> list[SoakSample]:
    """Samples with 1,800 live connections; ``*_extra`` grows linearly over the run."""
    n = len(rss)
    return [
        SoakSample(
            float(i),
            ProcSample(rss_kib=r, fds=1900 + fds_extra * i // n, threads=threads),
            1800.0,
            2000.0 + tasks_extra * i // n,
        )
        for i, r in enumerate(rss)
    ]


def test_growth_during_warm_up_then_a_plateau_is_flat() -> None:
    rss = [100_000 + 1000 * i for i in range(30)] + [130_000 + (i % 7) * 500 for i in range(60)]
    flat, figures = verdict(run(rss))
    assert flat, figures
    assert figures["rss_mib_warmup"] < figures["rss_mib_steady"]


def test_rss_growing_after_warm_up_is_not_flat() -> None:
    rss = [100_000 + 1000 * i for i in range(90)]  # +1 MiB a sample throughout
    flat, figures = verdict(run(rss))
    assert not flat and figures["rss_growth_steady_to_last_pct"] > 5


def test_leaked_files_or_tasks_are_not_flat() -> None:
    rss = [100_000] * 90
    assert verdict(run(rss))[0]
    assert not verdict(run(rss, fds_extra=200))[0]
    assert verdict(run(rss, fds_extra=60))[0]  # +20 between the thirds
    assert not verdict(run(rss, tasks_extra=400))[0]
    assert verdict(run(rss, tasks_extra=100))[0]  # +33 between the thirds: within bounds


def test_the_clients_count_is_what_holds_files_when_given() -> None:
    samples = [
        SoakSample(float(i), ProcSample(100_000, 1900 + 3 * i, 6), 1800.0, 2000.0, 1800 + 3 * i)
        for i in range(90)
    ]
    flat, figures = verdict(samples)  # more connections opening, not leaked files
    assert flat and figures["fds_net_last"] == figures["fds_net_steady"] == 100


def test_samples_without_metrics_are_left_out_of_the_net_figures() -> None:
    samples = run([100_000] * 90)
    samples[50] = SoakSample(50.0, ProcSample(100_000, 9999, 6), math.nan, math.nan)
    flat, figures = verdict(samples)
    assert flat and figures["fds_net_steady"] == 100


def test_too_few_samples_is_not_a_pass() -> None:
    assert not verdict(run([100_000, 100_000]))[0]
