"""The built-in ``PartitionedLog`` backends run ``chatcore.testing.LogSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.log import MemoryLog, PartitionedLog, SqliteLog
from chatcore.testing import LogSuite
from tests.services import KAFKA_BOOTSTRAP, require, unique


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

    @pytest.fixture
    def make_log(self) -> Callable[[], Awaitable[PartitionedLog]]:
        from chatcore.log.kafka import KafkaLog

        require("kafka")
        prefix = unique("conformance-")  # this test's own groups and transactional ids

        async def make() -> PartitionedLog:
            return KafkaLog(
                KAFKA_BOOTSTRAP,
                group_prefix=prefix,
                request_timeout_ms=10_000,
                session_timeout_ms=6_000,  # the broker's group.min.session.timeout.ms
                heartbeat_interval_ms=100,
                rebalance_timeout_ms=10_000,
            )

        return make
