"""The dashboards' and alerts' files, and the PromQL they hold."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

MONITORING = Path(__file__).parents[2] / "examples" / "deploy" / "monitoring"
DASHBOARD_FILES = sorted(MONITORING.glob("chatcore-*.json"))
SERIES = re.compile(r"\b((?:chatcore|process)_[a-z_]+)\b")


def generator() -> ModuleType:
    """examples/deploy/monitoring/dashboards.py, imported by path."""
    spec = importlib.util.spec_from_file_location(
        "chatcore_dashboards", MONITORING / "dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def all_exprs() -> list[str]:
    return [e for f in DASHBOARD_FILES for e in exprs(json.loads(f.read_text()))]


def series_names(expressions: list[str]) -> set[str]:
    """The metric names the expressions read (``chatcore_*`` and ``process_*``)."""
    return {name for e in expressions for name in SERIES.findall(e)}
