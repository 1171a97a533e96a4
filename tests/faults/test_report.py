"""The figures table and its place between the markers of docs/reliability.md."""

from __future__ import annotations

import pytest

from benchmarks.faults.report import BEGIN, END, render, splice

OUTCOME = {
    "name": "kafka_kill",
    "fault": "broker kill -9",
    "criterion": "lost = 0",
    "figures": {"acked_lost": 0, "gap_s": 1.5, "errors": {"Unavailable": 2}},
    "passed": False,
    "seconds": 12.0,
    "notes": ["a note"],
}


def test_render_has_a_row_per_scenario_and_its_figures() -> None:
    text = render([OUTCOME], header="head")
    assert text.startswith("head\n")
    assert "| `kafka_kill` | broker kill -9 | lost = 0 | **FAIL** | 12 s |" in text
    assert "| gap_s | 1.5 |" in text
    assert "| errors | Unavailable 2 |" in text
    assert "- a note" in text


def test_splice_appends_a_section_then_replaces_only_between_the_markers() -> None:
    doc = "# Reliability\n\nThe simulation's part.\n"
    once = splice(doc, "T1")
    assert once.startswith(doc.rstrip("\n"))
    assert f"{BEGIN}\nT1\n{END}" in once
    twice = splice(once + "\nafter\n", "T2")
    assert "T1" not in twice and f"{BEGIN}\nT2\n{END}" in twice
    assert twice.endswith("\nafter\n") and "The simulation's part." in twice


@pytest.mark.parametrize(
    "doc", [f"{BEGIN}\n{BEGIN}\n{END}\n{END}", f"{BEGIN} only", f"{END}\n{BEGIN}"]
)
def test_splice_refuses_broken_markers(doc: str) -> None:
    with pytest.raises(ValueError, match="marker"):
        splice(doc, "T")
