"""``ProductionConfig.sqlite_store``: the production adapters with the SQLite stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcore.backends import production_backends
from chatcore.config import ProductionConfig
from chatcore.store.sqlite import SqliteMembershipStore, SqliteMessageStore, SqliteReceiptStore

pytestmark = pytest.mark.anyio


def test_the_setting_comes_from_the_environment(tmp_path: Path) -> None:
    assert ProductionConfig().sqlite_store == ""
    path = str(tmp_path / "store.db")
    assert ProductionConfig.load(env={"CHATCORE_SQLITE_STORE": path}).sqlite_store == path


async def test_production_backends_use_one_sqlite_file_instead_of_cassandra(
    tmp_path: Path,
) -> None:
    # Nothing here connects: Redis and Kafka clients connect when first used.
    config = ProductionConfig(sqlite_store=str(tmp_path / "s" / "store.db"))
    backends = await production_backends(config)
    try:
        assert isinstance(backends.messages, SqliteMessageStore)
        assert isinstance(backends.receipts, SqliteReceiptStore)
        assert isinstance(backends.membership, SqliteMembershipStore)
        assert (tmp_path / "s" / "store.db").exists()
    finally:
        for extra in backends.extra:
            await extra.aclose()
