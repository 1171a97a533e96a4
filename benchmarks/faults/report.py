"""The figures table of docs/reliability.md, written between two markers.

Pure: :func:`render` turns outcomes (dicts, as the runner saves them) into Markdown;
:func:`splice` puts it between ``<!-- faults:begin -->`` and ``<!-- faults:end -->``
of a document, adding a section with the markers at the end if there is none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["BEGIN", "END", "render", "splice"]

BEGIN = "<!-- faults:begin -->"
END = "<!-- faults:end -->"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, Mapping):
        return ", ".join(f"{k} {n}" for k, n in v.items()) or "none"
    return str(v)


def render(outcomes: Sequence[Mapping[str, Any]], *, header: str) -> str:
    """A summary table (one row per scenario) and each scenario's figures."""
    lines = [
        header,
        "",
        "| scenario | fault | criterion | result | time |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        result = "pass" if o["passed"] else "**FAIL**"
        lines.append(
            f"| `{o['name']}` | {o['fault']} | {o['criterion']} | {result} | {o['seconds']:g} s |"
        )
    for o in outcomes:
        lines += ["", f"**`{o['name']}`**", "", "| figure | value |", "|---|---|"]
        lines += [f"| {k} | {_value(v)} |" for k, v in o["figures"].items()]
        for note in o.get("notes", ()):
            lines += ["", f"- {note}"]
    return "\n".join(lines)


def splice(document: str, table: str, *, section: str = "## Fault suite: figures") -> str:
    """``document`` with ``table`` between the markers (a new section if they are missing).

    Raise ValueError for markers out of order or doubled.
    """
    block = f"{BEGIN}\n{table}\n{END}"
    if document.count(BEGIN) != document.count(END) or document.count(BEGIN) > 1:
        raise ValueError("docs/reliability.md: the faults markers are doubled or unpaired")
    if BEGIN not in document:
        return document.rstrip("\n") + f"\n\n{section}\n\n{block}\n"
    head, _, rest = document.partition(BEGIN)
    if END not in rest:
        raise ValueError("docs/reliability.md: the faults end marker comes before the begin one")
    _, _, tail = rest.partition(END)
    return head + block + tail
