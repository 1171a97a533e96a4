"""The capacity model: a target and measured per-process figures in, a fleet out.

Pure arithmetic, no I/O. Every tier is sized by each of its limits separately; the
largest need sets the count and names the limit that *binds* it. Across tiers, the
limit that binds first is the one running closest to its capacity at the planned
counts (the first to saturate if the load grows evenly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

__all__ = ["Measured", "Need", "Plan", "Target", "Tier", "from_figures", "plan", "with_overrides"]

_Figures = TypeVar("_Figures", "Target", "Measured")

SECONDS_PER_DAY = 86_400
DAYS_PER_YEAR = 365
GIB = 1024**3
TB = 1000**4


@dataclass(frozen=True, kw_only=True)
class Target:
    """What the system must carry. The defaults are the design's own example."""

    mau: float = 1e9
    """Monthly active users."""
    online_share: float = 0.10
    """Share of MAU connected at the peak hour (one connection each, see ``devices``)."""
    devices: float = 1.0
    """Connected devices per online user."""
    dau_share: float = 0.5
    """Share of MAU active on a given day."""
    messages_per_dau: float = 50.0
    """Messages each daily active user sends per day."""
    peak_factor: float = 3.0
    """Peak message rate over the day's average."""
    recipients: float = 2.0
    """Devices each message is delivered to, on average (1:1 chats and groups mixed)."""
    retention_years: float = 5.0
    """How long history is kept."""
    wire_bytes: int = 300
    """Bytes of one message frame on the wire (body, ids, framing)."""

    @property
    def connections(self) -> float:
        """Concurrent connections at the peak."""
        return self.mau * self.online_share * self.devices

    @property
    def average_msg_s(self) -> float:
        """Messages per second over the day."""
        return self.mau * self.dau_share * self.messages_per_dau / SECONDS_PER_DAY

    @property
    def peak_msg_s(self) -> float:
        """Messages per second at the peak."""
        return self.average_msg_s * self.peak_factor

    @property
    def stored_messages(self) -> float:
        """Messages held in history at the end of the retention period."""
        return self.average_msg_s * SECONDS_PER_DAY * DAYS_PER_YEAR * self.retention_years


@dataclass(frozen=True, kw_only=True)
class Measured:
    """What one process, partition or node sustains: from ``chatcore bench`` or flags."""

    connections_per_gateway: float = 100_000
    """Idle connections one gateway process holds (memory and file descriptors)."""
    deliveries_per_gateway_s: float = 50_000
    """Deliveries per second one gateway process writes to its sockets."""
    msgs_per_worker_s: float = 1_000
    """Messages per second one worker process carries through every stage."""
    msgs_per_partition_s: float = 1_000
    """Messages per second one log partition carries (its Sequencer is single-writer)."""
    log_writes_per_message: float = 2.0
    """Log records per message (``chat.submitted`` and ``chat.messages``)."""
    log_bytes_per_record: int = 500
    """Bytes of one log record."""
    log_retention_hours: float = 168.0
    """How long Kafka keeps records."""
    kafka_replication: int = 3
    """Kafka replication factor."""
    broker_ingress_mb_s: float = 100.0
    """MB/s one broker takes in (replica traffic included)."""
    broker_disk_tb: float = 10.0
    """Usable disk of one broker, TB."""
    partitions_per_broker: int = 4_000
    """Partition replicas one broker hosts comfortably."""
    bytes_per_stored_message: int = 330
    """Bytes one message takes on one Cassandra replica (row, index, compression)."""
    cassandra_replication: int = 3
    """Cassandra replication factor."""
    cassandra_node_disk_tb: float = 4.0
    """Usable disk of one Cassandra node, TB (leave room for compaction)."""
    cassandra_writes_per_node_s: float = 25_000
    """Replica writes per second one Cassandra node sustains."""
    redis_bytes_per_connection: int = 300
    """Redis memory per connection (registry entry and presence key)."""
    redis_shard_memory_gib: float = 25.0
    """Usable memory of one Redis shard, GiB."""
    redis_ops_per_shard_s: float = 100_000
    """Commands per second one Redis shard sustains."""
    heartbeat_interval_s: float = 30.0
    """Seconds between a connection's presence heartbeats."""


@dataclass(frozen=True)
class Need:
    """One limit of a tier: how many units it alone would need."""

    limit: str
    exact: float
    detail: str


@dataclass(frozen=True)
class Tier:
    """One kind of machine or unit, sized by the largest of its needs."""

    name: str
    unit: str
    needs: tuple[Need, ...]

    @property
    def count(self) -> int:
        """Units to deploy: the largest need, rounded up (at least one)."""
        return max(1, math.ceil(max(need.exact for need in self.needs) - 1e-9))

    @property
    def binding(self) -> Need:
        """The limit that sets the count."""
        return max(self.needs, key=lambda need: need.exact)

    @property
    def utilization(self) -> float:
        """Load of the binding limit over the capacity of ``count`` units."""
        return self.binding.exact / self.count


@dataclass(frozen=True)
class Plan:
    """The fleet for a target, with the figures it derives from."""

    target: Target
    measured: Measured
    tiers: tuple[Tier, ...]
    figures: dict[str, float] = field(default_factory=dict)

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    @property
    def binds_first(self) -> Tier:
        """The tier whose binding limit saturates first if the load grows evenly."""
        return max(self.tiers, key=lambda tier: tier.utilization)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": _as_dict(self.target),
            "measured": _as_dict(self.measured),
            "figures": dict(self.figures),
            "tiers": [
                {
                    "name": tier.name,
                    "unit": tier.unit,
                    "count": tier.count,
                    "bound_by": tier.binding.limit,
                    "needs": {need.limit: need.exact for need in tier.needs},
                }
                for tier in self.tiers
            ],
            "binds_first": self.binds_first.name,
        }


def plan(target: Target | None = None, measured: Measured | None = None) -> Plan:
    """Size every tier for ``target`` from ``measured`` figures."""
    t = target or Target()
    m = measured or Measured()
    _check(t)
    _check(m)
    peak = t.peak_msg_s
    deliveries = peak * t.recipients
    connections = t.connections

    gateways = Tier(
        "gateways",
        "processes",
        (
            Need("connections", connections / m.connections_per_gateway, "sockets held"),
            Need("deliveries", deliveries / m.deliveries_per_gateway_s, "frames written"),
        ),
    )
    workers = Tier(
        "workers",
        "processes",
        (Need("messages", peak / m.msgs_per_worker_s, "messages through every stage"),),
    )
    worker_count = workers.count
    partitions = Tier(
        "partitions",
        "per topic",
        (
            Need("messages", peak / m.msgs_per_partition_s, "one Sequencer per partition"),
            Need("workers", float(worker_count), "one consumer per partition"),
        ),
    )
    log_ingress = peak * m.log_writes_per_message * m.log_bytes_per_record * m.kafka_replication
    log_disk = (
        t.average_msg_s
        * m.log_writes_per_message
        * m.log_bytes_per_record
        * m.kafka_replication
        * m.log_retention_hours
        * 3600
    )
    replicas = partitions.count * m.log_writes_per_message * m.kafka_replication
    brokers = Tier(
        "kafka brokers",
        "nodes",
        (
            Need("ingress", log_ingress / (m.broker_ingress_mb_s * 1e6), "MB/s in, replicas too"),
            Need("disk", log_disk / (m.broker_disk_tb * TB), "records kept"),
            Need("partitions", replicas / m.partitions_per_broker, "partition replicas"),
            Need("replication", float(m.kafka_replication), "one replica per broker"),
        ),
    )
    history_bytes = t.stored_messages * m.bytes_per_stored_message * m.cassandra_replication
    cassandra = Tier(
        "cassandra nodes",
        "nodes",
        (
            Need("disk", history_bytes / (m.cassandra_node_disk_tb * TB), "history kept"),
            Need(
                "writes",
                peak * m.cassandra_replication / m.cassandra_writes_per_node_s,
                "replica writes",
            ),
            Need("replication", float(m.cassandra_replication), "one replica per node"),
        ),
    )
    redis_memory = connections * m.redis_bytes_per_connection
    redis_ops = connections / m.heartbeat_interval_s + deliveries + peak
    redis = Tier(
        "redis shards",
        "primaries",
        (
            Need("memory", redis_memory / (m.redis_shard_memory_gib * GIB), "registry, presence"),
            Need("ops", redis_ops / m.redis_ops_per_shard_s, "heartbeats, lookups, publishes"),
        ),
    )
    figures = {
        "connections": connections,
        "average_msg_s": t.average_msg_s,
        "peak_msg_s": peak,
        "peak_deliveries_s": deliveries,
        "stored_messages": t.stored_messages,
        "history_bytes": history_bytes,
        "log_disk_bytes": log_disk,
        "redis_memory_bytes": redis_memory,
        "redis_ops_s": redis_ops,
        "ingress_bits_s": peak * t.wire_bytes * 8,
        "egress_bits_s": deliveries * t.wire_bytes * 8,
    }
    return Plan(t, m, (gateways, workers, partitions, brokers, cassandra, redis), figures)


def _check(values: Target | Measured) -> None:
    for item in fields(values):
        value = getattr(values, item.name)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{item.name} must be a positive number, got {value!r}")
    if isinstance(values, Target):
        for name in ("online_share", "dau_share"):
            if getattr(values, name) > 1:
                raise ValueError(f"{name} is a share of MAU: at most 1")


def _as_dict(values: Target | Measured) -> dict[str, float]:
    return {item.name: getattr(values, item.name) for item in fields(values)}


def with_overrides(values: _Figures, overrides: Mapping[str, str]) -> _Figures:
    """``values`` with fields set from ``name=value`` strings (dashes or underscores)."""
    known = {item.name: item for item in fields(values)}
    changes: dict[str, float] = {}
    for raw_name, raw_value in overrides.items():
        name = raw_name.replace("-", "_")
        if name not in known:
            everything = sorted({item.name for item in fields(Target) + fields(Measured)})
            raise ValueError(f"unknown figure {raw_name!r}; known: {', '.join(everything)}")
        try:
            number = float(raw_value)
        except ValueError:
            raise ValueError(f"{raw_name} must be a number, got {raw_value!r}") from None
        changes[name] = int(number) if known[name].type == "int" else number
    return replace(values, **changes)  # type: ignore[arg-type]


def from_figures(figures: Mapping[str, str]) -> tuple[Target, Measured]:
    """A target and measured figures from ``name=value`` strings, each routed by name."""
    target_names = {item.name for item in fields(Target)}
    is_target = {name: name.replace("-", "_") in target_names for name in figures}
    target = with_overrides(Target(), {k: v for k, v in figures.items() if is_target[k]})
    measured = with_overrides(Measured(), {k: v for k, v in figures.items() if not is_target[k]})
    return target, measured
