"""ChatNode on a three-broker Kafka (``scripts/services start kafka-cluster``) while one
broker is killed with SIGKILL under load.

The log's topics have three replicas and the brokers ``min.insync.replicas=2``; the
producer sends with ``acks=all``. Senders keep sending through the pipeline (a
``ChatNode`` whose log is the cluster) while the leader of the one partition they all
write to is killed; a send that fails is retried with the same ``client_msg_id``, as a
client does. In the end every acknowledged message is in the history exactly once,
seq is contiguous, and each sender's messages are in the order it sent them. The
killed broker is started again, and the test waits for it to rejoin.

Needs the cluster: the test FAILS (never skips) when it is down. It kills and starts
``kafka-cluster`` members through ``scripts/services``, so run it against a cluster
that the same checkout's script started.
"""

from __future__ import annotations

import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from chatcore.backends import Backends
from chatcore.errors import Unavailable
from chatcore.log.kafka import KafkaLog
from chatcore.model import StoredMessage
from chatcore.node import ChatNode, NodeOptions
from tests.services import KAFKA_CLUSTER_BOOTSTRAP, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services, pytest.mark.cluster, pytest.mark.slow]

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services"
SENDERS = [f"sender-{i}" for i in range(4)]
PER_SENDER = 60
KILL_AFTER = 40
"""Acknowledged sends (of all senders) before the broker is killed."""


async def services(*args: str) -> None:
    """Run ``scripts/services ARGS``; fail the test with its output if it fails."""
    result = await anyio.run_process([str(SERVICES), *args], check=False, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        pytest.fail(
            f"scripts/services {' '.join(args)} exited {result.returncode}:\n"
            + result.stdout.decode(errors="replace")[-4000:],
            pytrace=False,
        )


@pytest.fixture
async def log() -> AsyncIterator[KafkaLog]:
    require("kafka-cluster")
    async with KafkaLog(
        KAFKA_CLUSTER_BOOTSTRAP,
        group_prefix=unique("kc-"),
        transactional_id_prefix=unique("kc-"),
        replication_factor=3,
        request_timeout_ms=20_000,
        session_timeout_ms=6_000,
        heartbeat_interval_ms=500,
        rebalance_timeout_ms=15_000,
    ) as log:
        yield log
    # Whatever happened, leave all three brokers running for the next test.
    await services("start", "kafka-cluster")


async def leader_of(log: KafkaLog, topic: str) -> int:
    admin = await log._clients.admin()
    (info,) = await admin.describe_topics([topic])
    (partition,) = info["partitions"]
    assert sorted(partition["replicas"]) == [1, 2, 3], info
    leader: int = partition["leader"]
    return leader


async def in_sync_replicas(log: KafkaLog, topic: str) -> list[int]:
    admin = await log._clients.admin()
    (info,) = await admin.describe_topics([topic])
    (partition,) = info["partitions"]
    return sorted(partition["isr"])


async def test_killing_a_broker_under_load_loses_nothing_acknowledged(log: KafkaLog) -> None:
    backends = Backends.in_memory()
    backends.log = log
    options = NodeOptions(topic_prefix=unique("kc") + ".", partitions=1)
    acked: dict[str, list[tuple[str, int]]] = defaultdict(list)
    retried = 0
    enough = anyio.Event()
    async with ChatNode(backends, options) as node:
        chat = await node.create_chat(SENDERS[0], kind="group", members=SENDERS[1:], title="t")
        leader = await leader_of(log, node.topics.submitted)

        async def send_all(sender: str) -> None:
            nonlocal retried
            for i in range(PER_SENDER):
                msg_id = f"{sender}-{i}"
                with anyio.fail_after(120):
                    while True:
                        try:
                            accepted = await node.send(
                                sender, chat.chat_id, client_msg_id=msg_id, body=msg_id
                            )
                            break
                        except Unavailable:
                            retried += 1  # a client retries with the same client_msg_id
                            await anyio.sleep(0.2)
                acked[sender].append((msg_id, accepted.message_id))
                if sum(map(len, acked.values())) >= KILL_AFTER:
                    enough.set()

        async with anyio.create_task_group() as tg:
            for sender in SENDERS:
                tg.start_soon(send_all, sender)
            with anyio.fail_after(120):
                await enough.wait()
            await services("kill", f"kafka-cluster-{leader}")
        with anyio.fail_after(60):  # the controller moved leadership off the dead broker
            while (new_leader := await leader_of(log, node.topics.submitted)) == leader:
                await anyio.sleep(0.2)
        await services("start", "kafka-cluster")
        await node.settled(timeout_s=120)
        with anyio.fail_after(60):  # the restarted broker catches up and is in sync again
            while await in_sync_replicas(log, node.topics.submitted) != [1, 2, 3]:
                await anyio.sleep(0.2)

        stored: list[StoredMessage] = []
        while True:
            after = stored[-1].seq if stored else 0
            page = await node.history(SENDERS[0], chat.chat_id, after=after, limit=100)
            stored += page.messages
            if not page.messages:
                break

    total = len(SENDERS) * PER_SENDER
    assert [m.seq for m in stored] == list(range(1, total + 1)), "seq has gaps or repeats"
    by_msg_id = {m.client_msg_id: m for m in stored}
    assert len(by_msg_id) == total, "a message was stored twice"
    for sender in SENDERS:
        assert len(acked[sender]) == PER_SENDER
        seqs = []
        for msg_id, message_id in acked[sender]:
            message = by_msg_id.get(msg_id)
            assert message is not None, f"acknowledged {msg_id} is lost"
            assert message.message_id == message_id
            assert message.sender == sender
            seqs.append(message.seq)
        assert seqs == sorted(seqs), f"{sender}'s messages are out of order"
    print(f"killed broker {leader}; new leader {new_leader}; {retried} sends retried")
