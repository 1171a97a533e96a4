"""The built-in ``PartitionedLog`` backends run ``chatcore.testing.LogSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.log import MemoryLog, PartitionedLog, SqliteLog
from chatcore.testing import LogSuite
from tests.services import KAFKA_BOOTSTRAP, KAFKA_CLUSTER_BOOTSTRAP, require, unique


class TestMemory(LogSuite):
    @pytest.fixture
    def make_log(self) -> Callable[[], Awaitable[PartitionedLog]]:
        async def make() -> PartitionedLog:
            return MemoryLog()

        return make


class TestSqlite(LogSuite):
    durable = True

    @pytest.fixture
    def make_log(self, tmp_path: Path) -> Callable[[], Awaitable[PartitionedLog]]:
        async def make() -> PartitionedLog:
            return SqliteLog(tmp_path / "log.db")

        return make


@pytest.mark.services
class TestKafka(LogSuite):
    durable = True

    @pytest.fixture(
        params=[
            pytest.param("kafka", id="single"),
            pytest.param("kafka-cluster", id="cluster", marks=pytest.mark.cluster),
        ]
    )
    def make_log(self, request: pytest.FixtureRequest) -> Callable[[], Awaitable[PartitionedLog]]:
        """On the single broker, and on the three brokers of ``kafka-cluster`` with
        topics of three replicas."""
        from chatcore.log.kafka import KafkaLog

        service: str = request.param
        require(service)
        prefix = unique("conformance-")  # this test's own groups and transactional ids
        cluster = service == "kafka-cluster"

        async def make() -> PartitionedLog:
            return KafkaLog(
                KAFKA_CLUSTER_BOOTSTRAP if cluster else KAFKA_BOOTSTRAP,
                replication_factor=3 if cluster else None,
                group_prefix=prefix,
                request_timeout_ms=10_000,
                session_timeout_ms=6_000,  # the broker's group.min.session.timeout.ms
                heartbeat_interval_ms=100,
                rebalance_timeout_ms=10_000,
            )

        return make
