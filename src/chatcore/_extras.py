"""The one install hint for a missing optional extra.

A module that needs an extra imports it inside ``try`` and, on ImportError, raises
``missing_extra(...) from exc``: the user reads which extra to install instead of a
bare ModuleNotFoundError. ``tests/test_layering.py`` checks every extra's hint.
"""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(extra: str, exc: ImportError, *, needed_by: str) -> ImportError:
    """The ImportError to raise when ``needed_by`` cannot import what ``extra`` installs."""
    module = exc.name or "a dependency"
    return ImportError(f"{needed_by} needs {module}: pip install 'chatcore[{extra}]'")
