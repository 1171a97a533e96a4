"""The JSON Schema of protocol v1, generated from the frame classes for docs/.

Run ``python -m chatcore.protocol > docs/protocol.schema.json`` to publish it.

Descriptions come from docstrings, whose indentation each msgspec release renders its
own way; :func:`normalized` folds them to their meaning (paragraphs of single-spaced
words), so the published schema and a comparison with it do not depend on the
library's whitespace.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from chatcore.protocol.frames import ClientFrame, ServerFrame

__all__ = ["json_schema", "normalized"]

_REF = "#/$defs/{name}"


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of any frame; ``$defs`` has ClientFrame and ServerFrame."""
    (client, server), components = msgspec.json.schema_components(
        (ClientFrame, ServerFrame), ref_template=_REF
    )
    defs = {**components, "ClientFrame": client, "ServerFrame": server}
    return normalized(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "chatcore wire protocol v1",
            "description": "A frame of chatcore protocol v1: a ClientFrame or a ServerFrame.",
            "anyOf": [{"$ref": _REF.format(name=name)} for name in ("ClientFrame", "ServerFrame")],
            "$defs": dict(sorted(defs.items())),
        }
    )


def normalized(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``description`` folded: paragraphs of single-spaced words."""
    folded: dict[str, Any] = _walk(schema)
    return folded


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _fold(item) if key == "description" and isinstance(item, str) else _walk(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_walk(item) for item in value]
    return value


def _fold(text: str) -> str:
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())
