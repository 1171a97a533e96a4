"""A tiny JSON Schema checker for the keywords msgspec emits (jsonschema is not a dependency).

It refuses keywords it does not know, so a schema it cannot judge fails loudly.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["schema_errors"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}
_IGNORED = {"title", "description", "default", "discriminator", "$defs", "$schema"}


def schema_errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$"
) -> list[str]:
    """Every way ``value`` breaks ``schema`` (refs resolved in ``root``); empty if it passes."""
    errors: list[str] = []
    for key, rule in schema.items():
        if key in _IGNORED:
            continue
        if key == "$ref":
            name = rule.removeprefix("#/$defs/")
            errors += schema_errors(value, root["$defs"][name], root, at)
        elif key == "anyOf":
            if all(schema_errors(value, option, root, at) for option in rule):
                errors.append(f"{at}: matches no option of anyOf")
        elif key == "enum":
            if value not in rule:
                errors.append(f"{at}: {value!r} not in {rule}")
        elif key == "type":
            is_bool = isinstance(value, bool)
            if not isinstance(value, _TYPES[rule]) or (is_bool and rule != "boolean"):
                errors.append(f"{at}: not of type {rule}")
        elif key == "required":
            errors += [f"{at}: missing {name}" for name in rule if name not in value]
        elif key == "properties":
            for name, sub in rule.items():
                if isinstance(value, dict) and name in value:
                    errors += schema_errors(value[name], sub, root, f"{at}.{name}")
        elif key == "additionalProperties":
            for name, item in value.items() if isinstance(value, dict) else ():
                errors += schema_errors(item, rule, root, f"{at}.{name}")
        elif key == "propertyNames":
            for name in value if isinstance(value, dict) else ():
                errors += schema_errors(name, rule, root, f"{at}.<key {name!r}>")
        elif key == "items":
            for index, item in enumerate(value if isinstance(value, list) else ()):
                errors += schema_errors(item, rule, root, f"{at}[{index}]")
        elif key in ("minimum", "maximum"):
            low = key == "minimum"
            if isinstance(value, int) and (value < rule if low else value > rule):
                errors.append(f"{at}: {value} breaks {key} {rule}")
        elif key in ("minLength", "maxLength", "minItems", "maxItems", "maxProperties"):
            low = key.startswith("min")
            if isinstance(value, str | list | dict) and (
                len(value) < rule if low else len(value) > rule
            ):
                errors.append(f"{at}: length {len(value)} breaks {key} {rule}")
        elif key == "pattern":
            if isinstance(value, str) and not re.search(rule, value):
                errors.append(f"{at}: {value!r} does not match {rule}")
        else:
            raise AssertionError(f"unknown JSON Schema keyword {key!r} at {at}")
    return errors
