"""The proof: an end-to-end encrypted message's text is nowhere the server keeps or sends.

Alice sends bob (offline, so he gets a push) a message sealed with the real scheme, and
carol the same kind of message in clear as a control. Every place the pipeline puts a
message is then read back: the log's records (every topic, from the start), the
MessageStore's rows, the HotCache, the push notifications and the payload of every
push service, the log lines of every logger (the push notifier logs previews here),
and on the embedded backends every byte of the data folder's files (WAL included).
The control's text must be found in each of them (so the search can fail); the
sealed text, raw or base64, in none.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import msgspec
import pytest
from redis.asyncio import Redis

from chatcore.backends import Backends, production_backends
from chatcore.config import ProductionConfig
from chatcore.e2ee.scheme import DeviceKeyring, decrypt, encrypt
from chatcore.keys import DeviceKey
from chatcore.log import LogRecord, RetainingLog
from chatcore.node import ChatNode, NodeOptions
from chatcore.offline.log import LoggingPushNotifier
from chatcore.offline.memory import MemoryPushNotifier
from chatcore.push import PushNotifierGroup
from chatcore.push.render import apns_payload, fcm_message, webhook_payload, webpush_payload
from tests.e2e.conftest import _drop_keyspace as drop_keyspace
from tests.services import REDIS_URL, require, unique

pytestmark = pytest.mark.anyio

AUDIT = f"audit-{uuid.uuid4().hex[:8]}"


def forms(text: str) -> list[bytes]:
    raw = text.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw), raw.hex().encode()]


class World:
    def __init__(
        self,
        node: ChatNode,
        push: MemoryPushNotifier,
        data: Path | None = None,
        redis_prefix: str | None = None,
    ) -> None:
        self.node, self.push, self.data, self.redis_prefix = node, push, data, redis_prefix


def with_push(backends: Backends) -> MemoryPushNotifier:
    """Collect the pushes, and log each with its preview (so the logs are searched too)."""
    push = MemoryPushNotifier()
    backends.push = PushNotifierGroup(
        [push, LoggingPushNotifier(level=logging.WARNING, include_preview=True)]
    )
    return push


@pytest.fixture(params=["memory", "sqlite", pytest.param("production", marks=pytest.mark.services)])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "production":
        for service in ("kafka", "cassandra", "redis"):
            require(service)
        config = ProductionConfig.load(
            env={
                "CHATCORE_TOPIC_PREFIX": unique("e2ee") + ".",
                "CHATCORE_REDIS_PREFIX": unique("e2ee") + ":",
                "CHATCORE_CASSANDRA_KEYSPACE": unique("e2ee_"),
                "CHATCORE_PARTITIONS": "2",
            }
        )
        backends = await production_backends(config)
        push = with_push(backends)
        try:
            async with ChatNode(backends, NodeOptions.from_config(config)) as node:
                yield World(node, push, redis_prefix=config.redis_prefix)
        finally:
            await anyio.to_thread.run_sync(drop_keyspace, config.cassandra_keyspace)
        return
    data = None
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        data = tmp_path / "data"
        backends = Backends.embedded(data)
    push = with_push(backends)
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield World(node, push, data)


async def redis_values(prefix: str) -> list[bytes]:
    """Every value under ``prefix`` in Redis, read by type (DUMP may compress)."""
    client: Any = Redis.from_url(REDIS_URL)  # untyped reads: any type of value
    out: list[bytes] = []
    try:
        async for key in client.scan_iter(match=prefix + "*"):
            kind = (await client.type(key)).decode()
            values: list[Any] = []
            if kind == "string":
                values = [await client.get(key)]
            elif kind == "list":
                values = await client.lrange(key, 0, -1)
            elif kind == "hash":
                found = await client.hgetall(key)
                values = [k + b"=" + v for k, v in found.items()]
            elif kind == "set":
                values = list(await client.smembers(key))
            elif kind == "zset":
                values = await client.zrange(key, 0, -1)
            elif kind == "stream":
                values = [msgspec.json.encode(e) for e in await client.xrange(key)]
            out += [v for v in values if isinstance(v, bytes)]
            out.append(key)
    finally:
        await client.aclose()
    return out


def topics(node: ChatNode) -> tuple[str, ...]:
    """The topics that carry messages (receipts carry none)."""
    return (node.topics.submitted, node.topics.messages)


def keep_for_audit(node: ChatNode) -> None:
    """Make a log that drops records every stage has read keep them for the audit."""
    if isinstance(node.backends.log, RetainingLog):
        for topic in topics(node):
            node.backends.log.expect_group(topic, AUDIT)


async def log_records(node: ChatNode, sent: int) -> list[bytes]:
    """The ``sent`` records of each message topic, read from the start by the audit's
    group, and the Sequencer's compacted state."""
    log = node.backends.log
    out: list[bytes] = []
    for topic in topics(node):
        async with log.consumer(topic, group=AUDIT) as c:
            records: list[LogRecord] = []
            with anyio.fail_after(30):  # a new Kafka group joins first
                while len(records) < sent:
                    records += (await c.poll(timeout_s=0.5)).records
        out += [r.key.encode() + b"\0" + r.value for r in records]
    state = node.topics.sequencer_state
    for partition in range(await log.partition_count(state)):
        out += [
            k.encode() + b"\0" + v for k, v in (await log.read_compacted(state, partition)).items()
        ]
    return out


async def test_the_sealed_text_is_nowhere(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    node = world.node
    keep_for_audit(node)
    secret, control = f"SECRET-{uuid.uuid4().hex}", f"CONTROL-{uuid.uuid4().hex}"
    bob_ring = DeviceKeyring.generate("b1")
    await node.publish_key("bob", "b1", version=1, public_key=bob_ring.public_key)
    sealed_chat = await node.create_chat("alice", kind="direct", members=["bob"])
    clear_chat = await node.create_chat("alice", kind="direct", members=["carol"])
    keys = (await node.fetch_chat_keys("alice", sealed_chat.chat_id))["bob"]
    assert keys == [DeviceKey("bob", "b1", 1, bob_ring.public_key)]
    body = encrypt(
        secret, chat=sealed_chat.chat_id, sender="alice", sender_device="a1", recipients=keys
    )
    await node.send("alice", sealed_chat.chat_id, client_msg_id="s", body=body, encrypted=True)
    await node.send("alice", clear_chat.chat_id, client_msg_id="c", body=control)
    await node.settled()
    with anyio.fail_after(10):  # the first message of a batch is pushed at once
        while {n.user for n in world.push.sent} != {"bob", "carol"}:
            await anyio.sleep(0.02)

    stored = [
        m
        for chat in (sealed_chat, clear_chat)
        for m in await node.backends.messages.range(chat.chat_id, limit=10)
    ]
    cached = [
        m
        for chat in (sealed_chat, clear_chat)
        for m in await node.backends.cache.recent(chat.chat_id)
    ]
    pushes: list[bytes] = []
    for n in world.push.sent:
        pushes += [msgspec.json.encode(n), webpush_payload(n), apns_payload(n)]
        pushes += [
            msgspec.json.encode(webhook_payload(n)),
            msgspec.json.encode(fcm_message(n, "t")),
        ]
    places: dict[str, list[bytes]] = {
        "log": await log_records(node, sent=2),
        "store": [msgspec.json.encode(m) for m in stored],
        "cache": [msgspec.json.encode(m) for m in cached],
        "push": pushes,
        "logs": [caplog.text.encode()],
    }
    if world.redis_prefix is not None:
        places["redis"] = await redis_values(world.redis_prefix)
    if world.data is not None:
        places["files"] = [p.read_bytes() for p in sorted(world.data.iterdir()) if p.is_file()]
    assert len(stored) == 2 and len(cached) == 2
    assert [m.body for m in stored if m.encrypted] == [body]
    for place, blobs in places.items():
        assert any(control.encode() in blob for blob in blobs), f"the search misses {place}"
        for form in forms(secret):
            assert not any(form in blob for blob in blobs), f"the secret is in {place}"
    # Bob's device opens what the server holds.
    opened = decrypt(body, chat=sealed_chat.chat_id, sender="alice", user="bob", keyring=bob_ring)
    assert opened == secret
