"""A deterministic simulation of the whole chatcore pipeline (FoundationDB-style).

Several ChatNode processes (gateway, Router, Sequencer, workers each) and simulated
clients run in one thread, on virtual time, with one seeded RNG ordering every
choice; a fault injector wraps every port. A failing seed replays bit for bit::

    from chatcore.sim import run_seed
    result = run_seed(42)
    assert result.ok, result.report()

Or from the shell: ``chatcore sim --seeds 1000``. See docs/reliability.md.
"""

from chatcore.sim._faults import Faults, ProcessCrashed
from chatcore.sim._loop import SimDeadlock
from chatcore.sim._run import SimResult, run_seed, run_seeds, shortest_failure
from chatcore.sim._world import SimConfig, SimFailure

__all__ = [
    "Faults",
    "ProcessCrashed",
    "SimConfig",
    "SimDeadlock",
    "SimFailure",
    "SimResult",
    "run_seed",
    "run_seeds",
    "shortest_failure",
]
