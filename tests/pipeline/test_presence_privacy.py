"""Who may see whose presence (issue 11): a shared chat the watched user took part in.

Putting someone in a chat does not let you see them: they must have created it, or
sent or read in it. A subscription ends when the last such chat is no longer shared.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.backends import Backends
from chatcore.errors import Unauthorized
from chatcore.events import ChatEvent
from chatcore.model import ChatInfo, PresenceState, Watermarks
from chatcore.node import ChatNode, NodeOptions
from chatcore.presence.visibility import Visibility, visibility
from tests.pipeline.test_node import next_of

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        backends = Backends.embedded(tmp_path / "data")
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


def test_the_rule() -> None:
    mine = ChatInfo("g1", "group", ("mallory", "bob"))
    theirs = ChatInfo("g2", "group", ("bob", "alice"))
    assert visibility("bob", [], {}) is Visibility.STRANGER
    assert visibility("bob", [mine], {}) is Visibility.HIDDEN
    assert visibility("bob", [mine], {"g1": Watermarks("g1", "bob", 5, 0)}) is Visibility.HIDDEN
    assert visibility("bob", [mine], {"g1": Watermarks("g1", "bob", 5, 1)}) is Visibility.VISIBLE
    assert visibility("bob", [mine, theirs], {}) is Visibility.VISIBLE  # bob created g2


async def test_a_group_made_by_a_stranger_does_not_reveal_presence(node: ChatNode) -> None:
    chat = await node.create_chat("mallory", kind="group", members=["bob"], title="hi")
    async with node.connect("bob", "phone"):
        (state,) = await node.presence("mallory", ["bob"])
        assert state == PresenceState("bob", False, None)  # looks offline, never seen
        async with node.connect("mallory", "phone") as mallory:
            (state,) = await node.watch_presence(mallory, ["bob"])
            assert not state.online
            assert not node.hub.presence.watched_by(mallory)
        with pytest.raises(Unauthorized):
            await node.presence("mallory", ["carol"])  # no chat at all: refused
        # Once bob takes part (sends), mallory sees him.
        await node.send("bob", chat.chat_id, client_msg_id="b1", body="who are you?")
        await node.settled()
        (state,) = await node.presence("mallory", ["bob"])
        assert state.online
    await node.create_chat("alice", kind="direct", members=["carol"])
    async with node.connect("alice", "phone"):
        (state,) = await node.presence("carol", ["alice"])  # alice created it
        assert state.online


async def test_the_watch_ends_when_the_watcher_is_removed(node: ChatNode) -> None:
    chat = await node.create_chat("bob", kind="group", members=["alice", "carol"], title="t")
    async with node.connect("alice", "phone") as alice:
        await node.watch_presence(alice, ["bob"])
        assert node.hub.presence.watched_by(alice) == {"bob"}
        await node.update_members("bob", chat.chat_id, remove=["alice"])
        event = await next_of(alice, ChatEvent)
        assert "alice" not in event.chat.members
        assert not node.hub.presence.watched_by(alice)
        with pytest.raises(Unauthorized):
            await node.presence("alice", ["bob"])


async def test_the_watch_ends_when_the_watched_user_is_removed(node: ChatNode) -> None:
    chat = await node.create_chat("carol", kind="group", members=["alice", "dave"], title="t")
    other = await node.create_chat("dave", kind="group", members=["alice"], title="u")
    async with node.connect("alice", "phone") as alice:
        await node.watch_presence(alice, ["dave", "carol"])  # dave created `other`
        await node.send("dave", chat.chat_id, client_msg_id="d1", body="hi")
        await node.settled()
        await node.update_members("dave", other.chat_id, remove=["alice"])
        await next_of(alice, ChatEvent)
        assert node.hub.presence.watched_by(alice) == {"dave", "carol"}  # dave sent in `chat`
        await node.update_members("carol", chat.chat_id, remove=["dave"])
        await next_of(alice, ChatEvent)
        assert node.hub.presence.watched_by(alice) == {"carol"}
