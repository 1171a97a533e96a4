"""Two regions in the simulation: the pipeline at home, gateways across a WAN.

The invariants hold as in one region, a seed still replays bit for bit, and the
WAN's round trip is paid exactly where the model says it is crossed (virtual time:
these are properties of the model, not timings of this machine).
"""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from chatcore.cli import app
from chatcore.sim import Faults, SimConfig, run_seed, run_seeds, shortest_failure

SEEDS = int(os.environ.get("CHATCORE_SIM_REGION_SEEDS", "50"))
RTT = 0.1
EPS = 1e-9  # virtual time is a sum of floats
TWO = SimConfig(regions=2, wan_rtt_s=RTT)
QUIET = SimConfig(regions=2, wan_rtt_s=RTT, faults=Faults.none(), messages=20)


def test_two_regions_keep_every_invariant_under_faults() -> None:
    failures = run_seeds(range(SEEDS), TWO)
    assert not failures, shortest_failure(failures[0]).report()


def test_a_two_region_seed_replays_bit_for_bit() -> None:
    first, again = run_seed(5, TWO), run_seed(5, TWO)
    assert first.trace_hash == again.trace_hash
    assert any(" in remote runs ['gateway']" in line for line in first.trace)


def test_the_wan_is_paid_where_it_is_crossed() -> None:
    latency: dict[tuple[str, str], list[float]] = {}
    for seed in range(5):
        result = run_seed(seed, QUIET)
        assert result.ok, result.report(tail=20)
        for key, values in result.latency.items():
            latency.setdefault(key, []).extend(values)
    assert max(latency["accepted", "home"]) < RTT  # nothing crosses the WAN
    assert min(latency["accepted", "remote"]) >= RTT - EPS  # at least the append's round trip
    assert min(latency["delivered", "home->remote"]) >= RTT / 2 - EPS  # the bus, one way
    assert min(latency["delivered", "remote->home"]) >= RTT - EPS
    assert min(latency["delivered", "home->home"]) < RTT / 2


def test_one_region_measures_no_wan() -> None:
    result = run_seed(2, SimConfig(faults=Faults.none()))
    assert result.ok
    assert {where for _, where in result.latency} <= {"home", "home->home"}


def test_cli_prints_the_latency_table() -> None:
    out = CliRunner().invoke(
        app, ["sim", "--regions", "2", "--no-faults", "--seeds", "2", "--wan-rtt-ms", "80"]
    )
    assert out.exit_code == 0, out.output
    assert "WAN round trip 80 ms" in out.output
    assert "| accepted | remote |" in out.output


@pytest.mark.parametrize("regions", [0, 3])
def test_only_one_or_two_regions(regions: int) -> None:
    with pytest.raises(ValueError, match="regions is 1 or 2"):
        SimConfig(regions=regions)
