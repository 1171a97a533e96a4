"""Fanout: who must get a sequenced message, batched by gateway, and sending it there.

Layout: ``planner`` is the pure half (members and their connections in, a
:class:`FanoutPlan` out, no I/O); ``publish`` is the I/O half (:class:`Fanout` looks
the members up in the ConnectionRegistry, plans, and publishes on the GatewayBus).
"""

from chatcore.fanout.planner import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SYNC_THRESHOLD,
    FanoutMode,
    FanoutPlan,
    FanoutPlanner,
    GatewayBatch,
)
from chatcore.fanout.publish import Fanout, publish_to_members

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SYNC_THRESHOLD",
    "Fanout",
    "FanoutMode",
    "FanoutPlan",
    "FanoutPlanner",
    "GatewayBatch",
    "publish_to_members",
]
