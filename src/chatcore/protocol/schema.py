"""The JSON Schema of protocol v1, generated from the frame classes for docs/.

Run ``python -m chatcore.protocol > docs/protocol.schema.json`` to publish it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatcore.protocol.frames import ClientFrame, ServerFrame

__all__ = ["json_schema"]

_REF = "#/$defs/{name}"


def json_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of any frame; ``$defs`` has ClientFrame and ServerFrame."""
    (client, server), components = msgspec.json.schema_components(
        (ClientFrame, ServerFrame), ref_template=_REF
    )
    defs = {**components, "ClientFrame": client, "ServerFrame": server}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "chatcore wire protocol v1",
        "description": "A frame of chatcore protocol v1: a ClientFrame or a ServerFrame.",
        "anyOf": [{"$ref": _REF.format(name=name)} for name in ("ClientFrame", "ServerFrame")],
        "$defs": dict(sorted(defs.items())),
    }
