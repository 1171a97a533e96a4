"""Prometheus metrics of a chatcore process (one registry per server or worker).

:class:`ServerMetrics` is what ``/metrics`` exposes, and the
:class:`~chatcore.telemetry.Telemetry` the pipeline reports to. The names are
stable; docs/operations.md lists them with what each one means.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from chatcore.errors import ChatcoreError
from chatcore.node import ChatNode
from chatcore.telemetry import PipelineStage

__all__ = ["LATENCY_BUCKETS", "ServerMetrics", "watch_lag"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
"""Seconds: fine below 100 ms, where chat latency lives, and up to the 1 s alert."""

STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class ServerMetrics:
    """The counters, gauges and histograms ``/metrics`` exposes; the pipeline's Telemetry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        ProcessCollector(registry=r)  # process_cpu_seconds_total, _resident_memory_bytes, …
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
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_lag = Gauge(
            "chatcore_log_lag_records",
            "Records appended but not yet committed by a consumer group.",
            ["topic", "group"],
            registry=r,
        )
        self.stage_latency = Histogram(
            "chatcore_stage_latency_seconds",
            "From a message's acceptance until a pipeline stage is done with it "
            "(logged, sequenced, stored, pushed).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.store_write_seconds = Histogram(
            "chatcore_store_write_seconds",
            "One batched write to a store (messages, receipts).",
            ["store"],
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.presence_update_seconds = Histogram(
            "chatcore_presence_update_seconds",
            "Recording a device's arrival, departure or heartbeat in the presence store.",
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.receipt_latency = Histogram(
            "chatcore_receipt_delivery_seconds",
            "From a receipt's submission until the chat's members are told.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tasks = Gauge(
            "chatcore_event_loop_tasks",
            "Tasks of the server's event loop (asyncio), read at each scrape.",
            registry=r,
        )
        self.offline_queue = Gauge(
            "chatcore_offline_pending",
            "Offline notifications waiting to be coalesced and pushed (per delivery worker).",
            registry=r,
        )
        self.gaps = Counter(
            "chatcore_sequence_gaps",
            "Seqs found missing where a chat's sequence must be contiguous (loss).",
            ["where"],
            registry=r,
        )
        for stage in ("logged", "sequenced", "stored", "pushed"):
            self.stage_latency.labels(stage)  # every series exists from the start
        for store in ("messages", "receipts"):
            self.store_write_seconds.labels(store)
        self.gaps.labels("history")

    # chatcore.telemetry.Telemetry

    def stage_done(self, stage: PipelineStage, accepted_ms: Iterable[int], now_ms: int) -> None:
        histogram = self.stage_latency.labels(stage)
        for ts in accepted_ms:
            histogram.observe(max(0, now_ms - ts) / 1000)

    def store_write(self, store: str, seconds: float) -> None:
        self.store_write_seconds.labels(store).observe(seconds)

    def presence_update(self, seconds: float) -> None:
        self.presence_update_seconds.observe(seconds)

    def receipt_told(self, submitted_ms: Iterable[int], now_ms: int) -> None:
        for ts in submitted_ms:
            self.receipt_latency.observe(max(0, now_ms - ts) / 1000)

    def offline_pending(self, count: int) -> None:
        self.offline_queue.set(count)

    def gap(self, where: str, missing: int) -> None:
        self.gaps.labels(where).inc(missing)


async def watch_lag(node: ChatNode, metrics: ServerMetrics, *, every_s: float = 5.0) -> None:
    """Keep ``chatcore_log_lag_records`` current for the stages ``node`` runs."""
    while True:
        try:
            lag = await node.lag()
        except ChatcoreError:
            lag = {}
        for stage, behind in lag.items():
            metrics.log_lag.labels(stage.topic(node.topics), stage.group).set(behind)
        await anyio.sleep(every_s)
