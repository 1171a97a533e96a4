"""Fanout: who must get a sequenced message, batched by gateway (pure logic, no I/O)."""

from chatcore.fanout.planner import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SYNC_THRESHOLD,
    FanoutMode,
    FanoutPlan,
    FanoutPlanner,
    GatewayBatch,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_SYNC_THRESHOLD",
    "FanoutMode",
    "FanoutPlan",
    "FanoutPlanner",
    "GatewayBatch",
]
