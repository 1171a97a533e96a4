"""How a Cassandra keyspace is replicated: the settings checked, and a short text form.

Pure functions, no I/O (the Cassandra driver is not needed): the config reads them,
the schema applies them when it creates the keyspace.

* ``SimpleStrategy``: ``{"class": "SimpleStrategy", "replication_factor": 3}``, one
  factor for the whole cluster (one data center: development, tests).
* ``NetworkTopologyStrategy``: ``{"class": "NetworkTopologyStrategy", "dc1": 3,
  "dc2": 3}``, a factor per data center (named as the snitch names them).

The text form (``CHATCORE_CASSANDRA_REPLICATION``): ``"3"`` is SimpleStrategy with
factor 3; ``"dc1:3,dc2:2"`` is NetworkTopologyStrategy with those factors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatcore.errors import InvalidRequest

__all__ = [
    "DEFAULT_REPLICATION",
    "MAX_REPLICATION_FACTOR",
    "check_replication",
    "parse_replication",
]

DEFAULT_REPLICATION: Mapping[str, str | int] = {"class": "SimpleStrategy", "replication_factor": 1}
"""One copy: single-node development and tests. Production wants 3 per data center."""

MAX_REPLICATION_FACTOR = 32
"""A factor above this is surely a typo (each copy is a full replica of the data)."""

_STRATEGIES = {
    "simplestrategy": "SimpleStrategy",
    "org.apache.cassandra.locator.simplestrategy": "SimpleStrategy",
    "networktopologystrategy": "NetworkTopologyStrategy",
    "org.apache.cassandra.locator.networktopologystrategy": "NetworkTopologyStrategy",
}
_DC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,47}")


def _factor(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} must be a whole number, got {value!r}")
    try:
        factor = int(value)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{what} must be a whole number, got {value!r}") from exc
    if isinstance(value, float) and value != factor:
        raise InvalidRequest(f"{what} must be a whole number, got {value!r}")
    if not 0 <= factor <= MAX_REPLICATION_FACTOR:
        raise InvalidRequest(f"{what} must be between 0 and {MAX_REPLICATION_FACTOR}, got {factor}")
    return factor


def check_replication(replication: Mapping[str, Any]) -> dict[str, str | int]:
    """The replication map in canonical form (class short name, int factors).

    Raises ``InvalidRequest`` for a missing or unknown ``class``, a SimpleStrategy
    without a ``replication_factor`` (or with other keys), a NetworkTopologyStrategy
    without a data center, a bad data center name, or a factor that is not a whole
    number in 0..32 (0 keeps no copy in that data center; at least one must be >= 1).
    """
    if not isinstance(replication, Mapping):
        raise InvalidRequest(f"cassandra replication must be a table, got {replication!r}")
    options = dict(replication)
    raw_class = options.pop("class", None)
    strategy = _STRATEGIES.get(str(raw_class).lower()) if raw_class is not None else None
    if strategy is None:
        raise InvalidRequest(
            "cassandra replication needs class = SimpleStrategy or NetworkTopologyStrategy, "
            f"got {raw_class!r}"
        )
    if strategy == "SimpleStrategy":
        if set(options) != {"replication_factor"}:
            raise InvalidRequest(
                "SimpleStrategy takes exactly one option, replication_factor; "
                f"got {sorted(options)}"
            )
        factor = _factor(options["replication_factor"], "replication_factor")
        if factor < 1:
            raise InvalidRequest("replication_factor must be at least 1")
        return {"class": strategy, "replication_factor": factor}
    if not options:
        raise InvalidRequest("NetworkTopologyStrategy needs a factor per data center, e.g. dc1 = 3")
    result: dict[str, str | int] = {"class": strategy}
    for dc, value in options.items():
        if not isinstance(dc, str) or not _DC_NAME.fullmatch(dc) or dc == "replication_factor":
            raise InvalidRequest(f"not a data center name: {dc!r}")
        result[dc] = _factor(value, f"the replication factor of data center {dc!r}")
    if all(v == 0 for k, v in result.items() if k != "class"):
        raise InvalidRequest("NetworkTopologyStrategy needs a factor of at least 1 somewhere")
    return result


def parse_replication(text: str) -> dict[str, str | int]:
    """The text form: ``"3"`` (SimpleStrategy) or ``"dc1:3,dc2:2"``
    (NetworkTopologyStrategy); raises ``InvalidRequest`` as :func:`check_replication`."""
    text = text.strip()
    if not text:
        raise InvalidRequest("cassandra replication is empty")
    if ":" not in text:
        return check_replication({"class": "SimpleStrategy", "replication_factor": text})
    options: dict[str, Any] = {"class": "NetworkTopologyStrategy"}
    for item in text.split(","):
        dc, sep, factor = item.partition(":")
        if not sep or dc.strip() in options:
            raise InvalidRequest(f"expected dc:factor pairs separated by commas, got {text!r}")
        options[dc.strip()] = factor.strip()
    return check_replication(options)
