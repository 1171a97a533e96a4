"""Every scenario of the fault suite, in the order the runner runs them, with its time bound."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from benchmarks.faults import overload, partition, scenarios, soak
from benchmarks.faults.scenarios import Context, Outcome

__all__ = ["BOUNDS_S", "SCENARIOS"]

SCENARIOS: dict[str, Callable[[Context], Awaitable[Outcome]]] = {
    "kafka_kill": scenarios.kafka_kill,
    "gateway_restart": scenarios.gateway_restart,
    "reconnect_cut": scenarios.reconnect_cut,
    "redis_loss": scenarios.redis_loss,
    "partition": partition.partition,
    "slow_consumer": overload.slow_consumer,
    "half_open": overload.half_open,
    "soak": soak.soak,
}

BOUNDS_S: dict[str, float] = {
    "kafka_kill": 240.0,
    "gateway_restart": 150.0,
    "reconnect_cut": 150.0,
    "redis_loss": 150.0,
    "partition": 240.0,
    "slow_consumer": 200.0,
    "half_open": 150.0,
    "soak": 120.0,
}
"""Each scenario's hard time bound in seconds (the soak's length is added to its own)."""
