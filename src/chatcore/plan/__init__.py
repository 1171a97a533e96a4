"""``chatcore plan``: how many gateways, workers, partitions, brokers, Cassandra nodes
and Redis shards a target needs, from measured per-process figures.

The model is pure arithmetic (:func:`plan`); :func:`from_bench` reads the figures a
``chatcore bench`` run measured. See docs/capacity.md for the worked example.
"""

from chatcore.plan.measured import from_bench
from chatcore.plan.model import (
    Measured,
    Need,
    Plan,
    Target,
    Tier,
    from_figures,
    plan,
    with_overrides,
)
from chatcore.plan.render import render

__all__ = [
    "Measured",
    "Need",
    "Plan",
    "Target",
    "Tier",
    "from_bench",
    "from_figures",
    "plan",
    "render",
    "with_overrides",
]
