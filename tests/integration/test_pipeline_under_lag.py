"""The pipeline on Kafka + Cassandra + Redis while a stage runs behind (issue 11).

* Catch-up: the scenarios of ``tests/pipeline/test_catch_up.py`` on the production
  backends where the gap was found: the Cassandra store's writes are held back, so
  Delivery (a Kafka consumer group of its own) runs ahead of History.
* Backpressure: with no Delivery stage running, sends are refused as ``overloaded``
  past the bound (read from Kafka's offsets), and taken again once it catches up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import anyio.to_thread
import pytest

from chatcore.backends import Backends, production_backends
from chatcore.config import ProductionConfig
from chatcore.errors import Overloaded
from chatcore.model import SyncResult
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.stages import Role
from tests.pipeline.held import HeldMessageStore
from tests.pipeline.test_catch_up import assert_complete, send_while_history_is_held
from tests.services import require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]


@pytest.fixture
async def config() -> AsyncIterator[ProductionConfig]:
    for service in ("kafka", "cassandra", "redis"):
        require(service)
    config = ProductionConfig.load(
        env={
            "CHATCORE_TOPIC_PREFIX": unique("catchup") + ".",
            "CHATCORE_REDIS_PREFIX": unique("catchup") + ":",
            "CHATCORE_CASSANDRA_KEYSPACE": unique("catchup_"),
            "CHATCORE_PARTITIONS": "2",
        }
    )
    yield config
    await anyio.to_thread.run_sync(_drop_keyspace, config.cassandra_keyspace)


def _drop_keyspace(keyspace: str) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(["127.0.0.1"])
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
    finally:
        cluster.shutdown()


async def held_backends(config: ProductionConfig) -> tuple[Backends, HeldMessageStore]:
    backends = await production_backends(config)
    held = HeldMessageStore(backends.messages)
    backends.messages = held
    return backends, held


async def test_sync_on_production_backends_waits_for_history_or_says_overloaded(
    config: ProductionConfig,
) -> None:
    backends, held = await held_backends(config)
    async with ChatNode(backends, NodeOptions.from_config(config, history_wait_s=30)) as node:
        chat = await send_while_history_is_held(node, held, before=7, after=3)
        result: list[SyncResult] = []

        async def sync() -> None:
            result.append(await node.sync("bob", {chat.chat_id: 7}))

        async with anyio.create_task_group() as tg:
            tg.start_soon(sync)
            held.release()  # the sync may already be waiting for it
        assert_complete(result[0], chat, cursor=7, last=10)

        node.options = replace(node.options, history_wait_s=0.5)
        chat = await send_while_history_is_held(node, held, before=2, after=2)
        with pytest.raises(Overloaded):
            await node.sync("bob", {chat.chat_id: 2})
        held.release()
        node.options = replace(node.options, history_wait_s=30)
        assert_complete(await node.sync("bob", {chat.chat_id: 2}), chat, cursor=2, last=4)


async def test_sends_on_production_backends_are_refused_while_delivery_is_stalled(
    config: ProductionConfig,
) -> None:
    backends = await production_backends(config)
    roles: frozenset[Role] = frozenset({"gateway", "sequencer", "history", "receipts"})
    options = NodeOptions.from_config(
        config, roles=roles, max_delivery_backlog=6, backlog_sample_s=0
    )
    async with ChatNode(backends, options) as node:
        chat = await node.create_chat("alice", kind="group", members=["bob"], title="t")
        accepted = 0
        for i in range(7):
            try:
                await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body="x")
            except Overloaded:
                break
            accepted += 1
        # Kafka's transaction markers count as backlog too: at most twice the messages.
        assert 3 <= accepted <= 6
        log, submitted = node.backends.log, node.topics.submitted
        before = await log.end_offsets(submitted)
        with pytest.raises(Overloaded):
            await node.send("alice", chat.chat_id, client_msg_id="again", body="x")
        assert await log.end_offsets(submitted) == before  # nothing appended
        async with anyio.create_task_group() as tg:
            await tg.start(node.delivery_worker.run)
            assert await node.delivery_progress.caught_up(timeout_s=60)
            await node.send("alice", chat.chat_id, client_msg_id="after", body="x")
            tg.cancel_scope.cancel()
