"""Where the real services of the integration tests are, and a loud failure when one is down.

Tests of production backends talk to real Redis, Kafka, Cassandra, S3Proxy and Prometheus
servers (started by ``scripts/services start``; ``./scripts/check`` does it). A test whose
service is not reachable FAILS with the command to run; it never skips. To leave them out
on purpose, deselect them: ``pytest -m "not services"``.
"""

from __future__ import annotations

import os
import socket
import uuid
from urllib.parse import urlparse

import pytest

REDIS_URL = os.environ.get("CHATCORE_REDIS_URL", "redis://127.0.0.1:6379/0")
# The clusters (`scripts/services start redis-cluster kafka-cluster`; ./scripts/check
# starts them too): three Redis Cluster primaries, three Kafka brokers.
REDIS_CLUSTER_URL = os.environ.get(
    "CHATCORE_REDIS_CLUSTER_URL", "redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
)
KAFKA_CLUSTER_BOOTSTRAP = os.environ.get(
    "CHATCORE_KAFKA_CLUSTER_BOOTSTRAP", "127.0.0.1:9101,127.0.0.1:9102,127.0.0.1:9103"
)
KAFKA_BOOTSTRAP = os.environ.get("CHATCORE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
CASSANDRA_HOSTS = os.environ.get("CHATCORE_CASSANDRA_HOSTS", "127.0.0.1:9042")
S3_ENDPOINT = os.environ.get("CHATCORE_S3_ENDPOINT", "http://127.0.0.1:9000")
S3_ACCESS_KEY = os.environ.get("CHATCORE_S3_ACCESS_KEY", "chatcore")
S3_SECRET_KEY = os.environ.get("CHATCORE_S3_SECRET_KEY", "chatcore-secret")
S3_BUCKET = os.environ.get("CHATCORE_S3_BUCKET", "chatcore-test")
PROMETHEUS_URL = os.environ.get("CHATCORE_PROMETHEUS_URL", "http://127.0.0.1:9090")


def _host_port(address: str, default_port: int) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return (host or address, int(port)) if port.isdigit() else (address, default_port)


def _addresses(service: str) -> list[tuple[str, int]]:
    if service == "redis-cluster":
        hosts = urlparse(REDIS_CLUSTER_URL).netloc.rpartition("@")[2]
        return [_host_port(a, 6379) for a in hosts.split(",")]
    if service == "kafka-cluster":
        return [_host_port(a, 9092) for a in KAFKA_CLUSTER_BOOTSTRAP.split(",")]
    if service == "redis":
        url = urlparse(REDIS_URL)
        return [(url.hostname or "127.0.0.1", url.port or 6379)]
    if service == "kafka":
        return [_host_port(a, 9092) for a in KAFKA_BOOTSTRAP.split(",")]
    if service == "cassandra":
        return [_host_port(a, 9042) for a in CASSANDRA_HOSTS.split(",")]
    if service in ("s3proxy", "prometheus"):
        url = urlparse(S3_ENDPOINT if service == "s3proxy" else PROMETHEUS_URL)
        return [(url.hostname or "127.0.0.1", url.port or 80)]
    raise ValueError(service)


def require(service: str) -> None:
    """Fail the calling test loudly unless ``service`` accepts TCP connections (for a
    cluster, ``redis-cluster`` or ``kafka-cluster``: every one of its members)."""
    cluster = service.endswith("-cluster")
    last = ""
    for host, port in _addresses(service):
        try:
            with socket.create_connection((host, port), timeout=2):
                if not cluster:
                    return
        except OSError as exc:
            last = f"{host}:{port}: {exc}"
            if cluster:
                break
    if cluster and not last:
        return
    marker = "cluster" if cluster else "services"
    pytest.fail(
        f"{service} is not reachable ({last}). Start it with `scripts/services start {service}` "
        f'or deselect the real-service tests with -m "not {marker}".',
        pytrace=False,
    )


def unique(prefix: str) -> str:
    """A fresh name (key prefix, topic prefix, keyspace) so tests never share state."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"
