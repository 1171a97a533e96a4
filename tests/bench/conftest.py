"""A tiny benchmark context: rounds of one second, no progress display, results in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.progress import Progress

from benchmarks.results import Results
from benchmarks.scenarios._common import Bench
from benchmarks.system import CpuPlan, machine_info


@pytest.fixture
def bench(tmp_path: Path) -> Bench:
    results = Results(
        started="test", quick=True, repeats=1, machine=machine_info(), pinning="not pinned"
    )
    return Bench(
        results=results,
        plan=CpuPlan(None, ()),
        out=tmp_path,
        progress=Progress(disable=True),
        quick=True,
        repeats=1,
        duration_s=1.0,
    )
