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


async def test_the_topic_prefix_also_names_the_consumer_groups(tmp_path: Path) -> None:
    # Two deployments sharing a Kafka cluster (the prefix's purpose) must not share a
    # consumer group: each would rebalance the other's stages.
    config = ProductionConfig(sqlite_store=str(tmp_path / "store.db"), topic_prefix="t1.")
    backends = await production_backends(config)
    try:
        cluster = backends.log._cluster  # type: ignore[attr-defined]
        assert cluster.group_id("chatcore.history") == "t1.chatcore.history"
    finally:
        for extra in backends.extra:
            await extra.aclose()
