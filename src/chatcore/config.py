"""Settings of the production backends: a TOML file, then environment variables.

::

    # chatcore.toml
    [production]
    kafka_bootstrap = "kafka-1:9092,kafka-2:9092"
    cassandra_hosts = ["cass-1:9042", "cass-2:9042"]
    cassandra_keyspace = "chat"
    cassandra_replication = { class = "NetworkTopologyStrategy", dc1 = 3 }
    redis_url = "redis+cluster://redis-1:6379,redis-2:6379,redis-3:6379"
    partitions = 64
    kafka_replication_factor = 3

Environment variables win over the file: ``CHATCORE_KAFKA_BOOTSTRAP``,
``CHATCORE_CASSANDRA_HOSTS`` (comma-separated), ``CHATCORE_CASSANDRA_KEYSPACE``,
``CHATCORE_REDIS_URL``, ``CHATCORE_PARTITIONS``, ``CHATCORE_TOPIC_PREFIX``,
``CHATCORE_REDIS_PREFIX``, ``CHATCORE_PRESENCE_TTL_S``, ``CHATCORE_HEARTBEAT_S``,
``CHATCORE_S3_BUCKET``, ``CHATCORE_S3_ENDPOINT``, ``CHATCORE_S3_REGION``,
``CHATCORE_S3_ACCESS_KEY``, ``CHATCORE_S3_SECRET_KEY``, ``CHATCORE_S3_PREFIX``,
``CHATCORE_S3_CREATE_BUCKET`` (``true``/``false``), ``CHATCORE_SQLITE_STORE``,
``CHATCORE_KAFKA_REPLICATION_FACTOR`` (empty: the brokers' default),
``CHATCORE_CASSANDRA_REPLICATION`` (``"3"``: SimpleStrategy with factor 3;
``"dc1:3,dc2:3"``: NetworkTopologyStrategy with those factors per data center).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from chatcore.errors import InvalidRequest
from chatcore.store.replication import DEFAULT_REPLICATION, check_replication, parse_replication

__all__ = ["ProductionConfig"]


def _default_replication() -> dict[str, Any]:
    return dict(DEFAULT_REPLICATION)


@dataclass(frozen=True, kw_only=True)
class ProductionConfig:
    """Where Kafka, Cassandra and Redis are, and how chatcore lays out its data there."""

    kafka_bootstrap: str = "127.0.0.1:9092"
    """Kafka brokers to bootstrap from, ``host:port`` separated by commas."""
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1:9042",)
    """Cassandra contact points, ``host:port`` each."""
    cassandra_keyspace: str = "chatcore"
    """The keyspace of the stores (created with ``cassandra_replication`` if missing)."""
    cassandra_replication: Mapping[str, Any] = field(default_factory=_default_replication)
    """Keyspace replication (checked by :func:`chatcore.store.replication.check_replication`),
    used when the keyspace is created: SimpleStrategy with factor 1 by default (one
    node); NetworkTopologyStrategy with 3 per data center in production."""
    kafka_replication_factor: int | None = None
    """Replicas of each log topic chatcore creates; None: the brokers'
    ``default.replication.factor``. Use 3 with ``min.insync.replicas=2`` on the brokers."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """The Redis server of presence, registry, bus, hot cache, offline index and leases:
    ``redis://host:port/db``, or ``redis+cluster://host:port[,host:port...]`` for a Redis
    Cluster (seed nodes; the bus then uses sharded pub/sub)."""
    redis_prefix: str = "chatcore:"
    """Put before every Redis key and channel, so deployments can share a server."""
    topic_prefix: str = ""
    """Put before every Kafka topic name and consumer group (see ``NodeOptions.topic_prefix``)."""
    partitions: int = 16
    """Partitions of every log topic: the ceiling on Sequencer/worker parallelism."""
    presence_ttl_s: float = 60.0
    """How long a device counts as online without a refresh from its gateway."""
    heartbeat_s: float = 30.0
    """A connection's presence and registration live ``presence_ttl_s`` unless its
    gateway refreshes them, which it does every ``heartbeat_s``."""
    s3_bucket: str = ""
    """The S3 bucket of media blobs; empty: no blob store (the server refuses uploads)."""
    s3_endpoint: str | None = None
    """The S3 server's URL for an S3-compatible server (MinIO, S3Proxy); None: AWS."""
    s3_region: str = "us-east-1"
    """The S3 region to sign requests for."""
    s3_access_key: str | None = None
    """The S3 access key id; None: boto3's usual lookup (environment, instance role)."""
    s3_secret_key: str | None = None
    """The S3 secret key; None: boto3's usual lookup."""
    s3_prefix: str = "blobs/"
    """Put before every blob's object key in the bucket."""
    s3_create_bucket: bool = False
    """Create the bucket on start if it is missing (for development servers)."""
    sqlite_store: str = ""
    """A SQLite file for the message, receipt and membership stores instead of
    Cassandra (empty: Cassandra). For one machine only: a single node, or a gateway
    and workers sharing that file (the fault suite, ``benchmarks/faults``)."""

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> ProductionConfig:
        """Read ``path`` (its ``[production]`` table), then apply environment overrides.

        Raises InvalidRequest for an unreadable file, an unknown key or a bad value.
        """
        env = os.environ if env is None else env
        config = cls()
        if path is not None:
            try:
                data = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise InvalidRequest(f"cannot read config {path}: {exc}") from exc
            config = config._merged(data.get("production", {}), f"{path} [production]")
        overrides: dict[str, Any] = {}
        for name in (f.name for f in fields(cls)):
            value = env.get(f"CHATCORE_{name.upper()}")
            if value is not None:
                overrides[name] = value
        if "cassandra_replication" in overrides:
            text = overrides["cassandra_replication"]
            try:
                overrides["cassandra_replication"] = parse_replication(text)
            except InvalidRequest as exc:
                raise InvalidRequest(f"CHATCORE_CASSANDRA_REPLICATION: {exc}") from exc
        return config._merged(overrides, "environment")

    def _merged(self, values: Mapping[str, Any], origin: str) -> ProductionConfig:
        known = {f.name for f in fields(self)}
        unknown = set(values) - known
        if unknown:
            raise InvalidRequest(f"unknown settings in {origin}: {sorted(unknown)}")
        clean = dict(values)
        if "cassandra_hosts" in clean:
            hosts = clean["cassandra_hosts"]
            if isinstance(hosts, str):
                hosts = [h.strip() for h in hosts.split(",") if h.strip()]
            clean["cassandra_hosts"] = tuple(hosts)
        for name in ("presence_ttl_s", "heartbeat_s"):
            if name in clean:
                try:
                    clean[name] = float(clean[name])
                except (TypeError, ValueError) as exc:
                    raise InvalidRequest(f"{name} must be a number ({origin})") from exc
                if not clean[name] > 0:
                    raise InvalidRequest(f"{name} must be positive ({origin})")
        if isinstance(clean.get("s3_create_bucket"), str):
            flag = clean["s3_create_bucket"].strip().lower()
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise InvalidRequest(f"s3_create_bucket must be true or false ({origin})")
            clean["s3_create_bucket"] = flag in ("true", "1", "yes")
        if "cassandra_replication" in clean:
            try:
                clean["cassandra_replication"] = check_replication(clean["cassandra_replication"])
            except InvalidRequest as exc:
                raise InvalidRequest(f"cassandra_replication ({origin}): {exc}") from exc
        if "kafka_replication_factor" in clean:
            value = clean["kafka_replication_factor"]
            if value is None or (isinstance(value, str) and not value.strip()):
                clean["kafka_replication_factor"] = None
            else:
                try:
                    if isinstance(value, bool):
                        raise ValueError(value)
                    clean["kafka_replication_factor"] = int(value)
                except (TypeError, ValueError) as exc:
                    raise InvalidRequest(
                        f"kafka_replication_factor must be an integer ({origin})"
                    ) from exc
                if clean["kafka_replication_factor"] < 1:
                    raise InvalidRequest(f"kafka_replication_factor must be >= 1 ({origin})")
        if "partitions" in clean:
            try:
                clean["partitions"] = int(clean["partitions"])
            except (TypeError, ValueError) as exc:
                raise InvalidRequest(f"partitions must be an integer ({origin})") from exc
            if clean["partitions"] < 1:
                raise InvalidRequest(f"partitions must be >= 1 ({origin})")
        return replace(self, **clean)
