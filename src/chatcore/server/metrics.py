"""Prometheus metrics of a chatcore server (one registry per server)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServerMetrics"]


class ServerMetrics:
    """The counters, gauges and histograms ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.connections = Gauge(
            "chatcore_connections", "Open WebSocket connections (after hello).", registry=r
        )
        self.accepted = Counter(
            "chatcore_messages_accepted", "Messages accepted (durable in the log).", registry=r
        )
        self.delivered = Counter(
            "chatcore_messages_delivered", "Message frames pushed to connections.", registry=r
        )
        self.errors = Counter(
            "chatcore_request_errors", "Requests answered with an error.", ["code"], registry=r
        )
        self.closes = Counter(
            "chatcore_connection_closes", "Connections closed by the server.", ["code"], registry=r
        )
        self.latency = Histogram(
            "chatcore_delivery_latency_seconds",
            "From a message's acceptance to its first push on this gateway.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.log_lag = Gauge(
            "chatcore_log_lag_records",
            "Records appended but not yet committed by a consumer group.",
            ["topic", "group"],
            registry=r,
        )
