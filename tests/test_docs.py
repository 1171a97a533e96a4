"""The docs carry what the code generates, and the README's commands stay true."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

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


OPTIONS_CLASSES = [
    ("src/chatcore/node.py", "NodeOptions"),
    ("src/chatcore/server/app.py", "ServerSettings"),
    ("src/chatcore/gateway/session.py", "SessionLimits"),
    ("src/chatcore/client/_options.py", "ClientOptions"),
    ("src/chatcore/config.py", "ProductionConfig"),
    ("src/chatcore/server/media.py", "MediaSettings"),
]


def undocumented_fields(source: str, name: str) -> list[str]:
    """The fields of class ``name`` in ``source`` with no docstring right below them."""
    (cls,) = (
        n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == name
    )
    body = cls.body
    return [
        stmt.target.id
        for stmt, after in zip(body, [*body[1:], None], strict=True)
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
        if not (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant))
    ]


@pytest.mark.parametrize(("path", "name"), OPTIONS_CLASSES)
def test_every_option_has_a_description(path: str, name: str) -> None:
    assert undocumented_fields((ROOT / path).read_text(), name) == []


def test_an_undocumented_option_is_found() -> None:
    source = (
        'class O:\n    a: int = 1\n    """A."""\n    b: int = 2\n    c: int = 3\n    """C."""\n'
    )
    assert undocumented_fields(source, "O") == ["b"]
