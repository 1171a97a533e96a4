"""The deterministic simulation: it passes, it replays bit for bit, and it finds bugs.

``CHATCORE_SIM_SEEDS`` sets how many seeds :func:`test_seeds_keep_every_invariant`
runs (200 by default; ``chatcore sim --seeds 10000`` is the long run).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest
from typer.testing import CliRunner

from chatcore.cli import app
from chatcore.sim import Faults, SimConfig, run_seed, run_seeds, shortest_failure
from tests.sim.planted import commit_before_transaction, forget_dedupe_on_restore

SEEDS = int(os.environ.get("CHATCORE_SIM_SEEDS", "200"))


def test_seeds_keep_every_invariant() -> None:
    failures = run_seeds(range(SEEDS))
    assert not failures, shortest_failure(failures[0]).report()


def test_a_seed_replays_bit_for_bit() -> None:
    first, again, other = run_seed(7), run_seed(7), run_seed(8)
    assert first.trace == again.trace
    assert first.trace_hash == again.trace_hash
    assert first.trace_hash != other.trace_hash


def test_a_seed_replays_in_another_process_with_another_hash_seed() -> None:
    here = run_seed(11)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-m", "chatcore.cli", "sim", "--seed", "11", "--trace"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"sha256 {here.trace_hash[:16]}" in out
    assert here.trace[-1] in out


def test_every_kind_of_fault_is_injected() -> None:
    trace = [line for seed in range(20) for line in run_seed(seed).trace]
    for kind in ("CRASH", ": error", "answer lost", "delay", "bus drop", "bus twice", "jump"):
        assert any(kind in line for line in trace), kind
    assert any("up (run 2)" in line for line in trace)  # a crashed process came back


def test_without_faults_nothing_goes_wrong() -> None:
    result = run_seed(3, SimConfig(faults=Faults.none(), nodes=2, users=3))
    assert result.ok, result.report()
    assert not any("CRASH" in line or "error" in line for line in result.trace)


@pytest.mark.parametrize(
    ("plant", "symptom", "within"),
    [
        (commit_before_transaction, "not stored", 20),
        (forget_dedupe_on_restore, "stored 2 times", 400),
    ],
    ids=["commit_before_transaction", "forget_dedupe_on_restore"],
)
def test_planted_bugs_are_caught(
    plant: Callable[[], AbstractContextManager[None]], symptom: str, within: int
) -> None:
    with plant():
        failures = run_seeds(range(within))
        assert failures, f"not caught within {within} seeds"
        caught = failures[0]
        assert any(symptom in v for v in caught.violations), caught.violations
        replay = run_seed(caught.seed)  # the failing seed fails again, identically
        assert replay.trace_hash == caught.trace_hash
        shortest = shortest_failure(caught)
        assert not shortest.ok
        assert shortest.config.messages <= caught.config.messages
    assert run_seed(caught.seed).ok  # and passes once the bug is gone


def test_cli_runs_seeds_and_reports_a_failure_with_its_replay() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["sim", "--seeds", "3", "--first", "40"])
    assert ok.exit_code == 0, ok.output
    assert "3 seeds ok" in ok.output
    with commit_before_transaction():
        failed = runner.invoke(app, ["sim", "--seeds", "20"])
    assert failed.exit_code == 1, failed.output
    assert "FAILED" in failed.output
    assert "replay: chatcore sim --seed" in failed.output
