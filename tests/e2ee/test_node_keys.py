"""ChatNode's key directory calls and its check of encrypted bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, NotMember, Unauthorized
from chatcore.keys import DeviceKey
from chatcore.keys.rules import KeyRules
from chatcore.node import ChatNode, NodeOptions
from tests.envelopes import shaped_envelope

pytestmark = pytest.mark.anyio

KEY1 = "A" * 43  # the shape of a 32-byte key (the directory never uses it)
KEY2 = "B" * 43


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        backends = Backends.embedded(tmp_path / "data")
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


async def test_keys_are_fetched_only_for_contacts(node: ChatNode) -> None:
    await node.create_chat("alice", kind="direct", members=["bob"])
    assert await node.publish_key("bob", "phone", version=1, public_key=KEY1) is True
    assert await node.publish_key("bob", "phone", version=1, public_key=KEY1) is False
    found = await node.fetch_keys("alice", ["bob", "alice"])
    assert found == {"bob": [DeviceKey("bob", "phone", 1, KEY1)], "alice": []}
    with pytest.raises(Unauthorized, match="bob"):
        await node.fetch_keys("mallory", ["bob"])
    with pytest.raises(Unauthorized, match="carol"):
        await node.fetch_keys("alice", ["bob", "carol"])
    with pytest.raises(InvalidRequest):
        await node.fetch_keys("alice", [f"u{i}" for i in range(1025)])


async def test_rotation_and_stale_versions(node: ChatNode) -> None:
    await node.publish_key("bob", "phone", version=3, public_key=KEY1)
    with pytest.raises(InvalidRequest, match="stale key version 2"):
        await node.publish_key("bob", "phone", version=2, public_key=KEY2)
    with pytest.raises(InvalidRequest, match="stale key version 3"):
        await node.publish_key("bob", "phone", version=3, public_key=KEY2)
    with pytest.raises(InvalidRequest, match="32 bytes"):
        await node.publish_key("bob", "phone", version=4, public_key="AAAA")
    assert await node.fetch_keys("bob", ["bob"]) == {"bob": [DeviceKey("bob", "phone", 3, KEY1)]}
    assert await node.publish_key("bob", "phone", version=4, public_key=KEY2)
    assert await node.fetch_keys("bob", ["bob"]) == {"bob": [DeviceKey("bob", "phone", 4, KEY2)]}
    assert await node.revoke_key("bob", "phone") is True
    assert await node.fetch_keys("bob", ["bob"]) == {"bob": []}


async def test_the_device_limit_applies(tmp_path: Path) -> None:
    backends = Backends.in_memory()
    from chatcore.keys import MemoryKeyDirectory

    backends.keys = MemoryKeyDirectory(rules=KeyRules(max_devices_per_user=1))
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        await node.publish_key("bob", "phone", version=1, public_key=KEY1)
        with pytest.raises(InvalidRequest, match="revoke one first"):
            await node.publish_key("bob", "laptop", version=1, public_key=KEY2)


async def test_an_encrypted_send_must_be_an_envelope(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    log = node.backends.log
    before = await log.end_offsets(node.topics.submitted)
    for body in ("plain text", "c2VjcmV0", shaped_envelope("x")[:-8]):
        with pytest.raises(InvalidRequest, match=r"encrypted body|envelope"):
            await node.send("alice", chat.chat_id, client_msg_id="m", body=body, encrypted=True)
    assert await log.end_offsets(node.topics.submitted) == before
    await node.send(
        "alice", chat.chat_id, client_msg_id="m", body=shaped_envelope("x"), encrypted=True
    )
    assert await log.end_offsets(node.topics.submitted) != before


async def test_a_chats_keys_are_its_members_keys(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob", "carol"])
    await node.publish_key("bob", "phone", version=1, public_key=KEY1)
    await node.publish_key("alice", "laptop", version=2, public_key=KEY2)
    found = await node.fetch_chat_keys("alice", chat.chat_id)
    assert found == {
        "alice": [DeviceKey("alice", "laptop", 2, KEY2)],
        "bob": [DeviceKey("bob", "phone", 1, KEY1)],
        "carol": [],
    }
    with pytest.raises(NotMember):
        await node.fetch_chat_keys("mallory", chat.chat_id)


async def test_an_encrypted_edit_must_be_an_envelope(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="direct", members=["bob"])
    sealed = shaped_envelope("first")
    await node.send("alice", chat.chat_id, client_msg_id="m", body=sealed, encrypted=True)
    await node.settled()
    log = node.backends.log
    before = await log.end_offsets(node.topics.submitted)
    with pytest.raises(InvalidRequest, match="encrypted body"):
        await node.edit("alice", chat.chat_id, 1, "plain words", encrypted=True)
    assert await log.end_offsets(node.topics.submitted) == before
    await node.edit("alice", chat.chat_id, 1, shaped_envelope("second"), encrypted=True)
    assert await log.end_offsets(node.topics.submitted) != before
