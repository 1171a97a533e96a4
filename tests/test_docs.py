"""The docs carry what the code generates, and the README's commands stay true."""

from __future__ import annotations

import json
from pathlib import Path

from chatcore.protocol import json_schema
from chatcore.protocol.schema import normalized

ROOT = Path(__file__).resolve().parent.parent


def test_published_schema_is_the_codes_schema() -> None:
    """Compared by meaning: descriptions are folded on both sides, so whitespace is free."""
    published = json.loads((ROOT / "docs" / "protocol.schema.json").read_text())
    assert normalized(published) == json_schema(), (
        "regenerate: python -m chatcore.protocol > docs/protocol.schema.json"
    )


def test_schema_descriptions_are_compared_by_meaning() -> None:
    indented = {"description": "One line\n    goes on.\n\n    A second   paragraph.\n"}
    flat = {"description": "One line goes on.\n\nA second paragraph."}
    assert normalized(indented) == normalized(flat) == flat
    assert normalized({"description": "One."}) != normalized({"description": "Two."})


def test_readme_commands_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/check" in readme
    assert (ROOT / "scripts" / "check").stat().st_mode & 0o111
    assert "chatcore serve --dev" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/check" in ci
