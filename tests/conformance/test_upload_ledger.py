"""The built-in ``UploadLedger`` backends run ``chatcore.testing.UploadLedgerSuite``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from chatcore.testing import UploadLedgerSuite
from chatcore.uploads import MemoryUploadLedger, SqliteUploadLedger, UploadLedger
from chatcore.uploads.redis import RedisUploadLedger


class TestMemory(UploadLedgerSuite):
    @pytest.fixture
    def make_store(self) -> Callable[[], Awaitable[UploadLedger]]:
        async def make() -> UploadLedger:
            return MemoryUploadLedger()

        return make


class TestSqlite(UploadLedgerSuite):
    durable = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[], Awaitable[UploadLedger]]:
        async def make() -> UploadLedger:
            return SqliteUploadLedger(tmp_path / "uploads.db")

        return make


@pytest.mark.services
class TestRedis(UploadLedgerSuite):
    durable = True

    @pytest.fixture
    def make_store(
        self, redis_url: str, redis_prefix: Callable[[], str]
    ) -> Callable[[], Awaitable[UploadLedger]]:
        prefix = redis_prefix()

        async def make() -> UploadLedger:
            return RedisUploadLedger(redis_url, prefix=prefix)

        return make
