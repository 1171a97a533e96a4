"""Every metric the server exposes is documented, by its exact name, in docs/operations.md."""

from __future__ import annotations

from pathlib import Path

from chatcore.server.metrics import ServerMetrics

OPERATIONS = Path(__file__).parents[2] / "docs" / "operations.md"


def test_every_metric_is_documented() -> None:
    text = OPERATIONS.read_text()
    names = {
        family.name
        for family in ServerMetrics().registry.collect()
        if family.name.startswith("chatcore_")  # process_*: prometheus_client's standard set
    }
    assert names, "no metrics collected"
    missing = sorted(name for name in names if f"`{name}" not in text)
    assert not missing, f"docs/operations.md does not name {missing}"
