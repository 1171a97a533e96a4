"""The soak in CI: 2,000 connections churning through ``chatcore serve`` for 5 minutes.

``CHATCORE_SOAK_SECONDS`` makes it longer (or shorter, while developing). It starts
its own Redis and Kafka on ports 26379/29092 like ``test_smoke.py``; what "flat"
means, and why, is in ``benchmarks/faults/soak.py`` and docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.faults.__main__ import run_all
from benchmarks.faults.scenarios import Context, Sizes
from benchmarks.faults.stack import Services

pytestmark = [pytest.mark.anyio, pytest.mark.services]

SOAK_S = float(os.environ.get("CHATCORE_SOAK_SECONDS", "300"))
"""How long the soak runs after its ramp (seconds)."""


async def test_2000_churning_connections_leave_fds_tasks_and_rss_flat(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `scripts/services install redis`")
    sizes = replace(Sizes(), soak_s=SOAK_S, soak_connections=2000)
    ctx = Context(Services(tmp_path / "services", 26379, 29092), tmp_path, sizes)
    (outcome,) = await run_all(["soak"], ctx, echo=False)
    report = json.dumps(outcome.to_dict(), indent=1)
    print(report)  # the figures, with `pytest -rP` (or -s)
    assert outcome.passed, report
    figures = outcome.figures
    assert figures["connection_cycles"] >= 2000, report  # every connection churned
    assert figures["samples"] >= 0.8 * SOAK_S, report  # the sampler kept up
