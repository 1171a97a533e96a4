"""The SDK's live signals against the real server: presence, typing, receipts, chat updates."""

from __future__ import annotations

import time

import anyio
import pytest

from chatcore.client import (
    ChatUpdated,
    ClientOptions,
    PresenceChanged,
    ReceiptChanged,
    TypingStarted,
)
from chatcore.errors import Unauthorized
from chatcore.protocol import PresenceView
from tests.client.harness import Device, device, wait_until
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio

FAST = ClientOptions(backoff_initial_s=0.05, backoff_max_s=0.5)


def receipts(d: Device) -> list[ReceiptChanged]:
    return d.of_type(ReceiptChanged)


def states_of(d: Device, user: str) -> list[PresenceView]:
    return [s for e in d.of_type(PresenceChanged) for s in e.states if s.user == user]


async def test_presence_goes_online_then_offline_with_last_seen(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        await server.node.create_chat("bob", kind="direct", members=["alice"])
        (before,) = await alice.client.subscribe_presence(["bob"])
        assert (before.user, before.status) == ("bob", "offline")
        connected_at = int(time.time() * 1000)
        async with device(server.ws_url, server.token("bob")):
            await wait_until(
                lambda: any(s.status == "online" for s in states_of(alice, "bob")),
                what="bob online",
            )
            (now,) = await alice.client.subscribe_presence(["bob"])
            assert now.status == "online"
        await wait_until(
            lambda: states_of(alice, "bob")[-1].status == "offline", what="bob offline"
        )
        gone = states_of(alice, "bob")[-1]
        assert gone.last_seen is not None
        assert gone.last_seen >= connected_at - 1000


async def test_presence_needs_a_shared_chat(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        with pytest.raises(Unauthorized):
            await alice.client.subscribe_presence(["stranger"])
        assert alice.client.connected, "an error answer keeps the connection"


async def test_presence_is_followed_again_after_a_reconnect(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice"), options=FAST) as alice:
        await server.node.create_chat("bob", kind="direct", members=["alice"])
        await alice.client.subscribe_presence(["bob"])
        await server.kill_connections()
        await wait_until(lambda: len(states_of(alice, "bob")) >= 1, what="states after resume")
        seen = len(states_of(alice, "bob"))
        async with device(server.ws_url, server.token("bob")):
            await wait_until(
                lambda: any(s.status == "online" for s in states_of(alice, "bob")[seen:]),
                what="a push on the new connection",
            )


async def test_unsubscribed_presence_is_not_pushed(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        await server.node.create_chat("bob", kind="direct", members=["alice"])
        await alice.client.subscribe_presence(["bob"])
        await alice.client.unsubscribe_presence(["bob"])
        async with device(server.ws_url, server.token("bob")):
            await anyio.sleep(0.5)
        assert states_of(alice, "bob") == []


async def test_typing_reaches_the_other_member_only(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        await alice.client.typing(chat)
        await wait_until(lambda: bool(bob.of_type(TypingStarted)), what="typing")
        assert bob.of_type(TypingStarted) == [TypingStarted(chat, "alice")]
        await alice.client.ping()  # the typing frame was handled before this answer
        assert alice.of_type(TypingStarted) == []


async def test_receipts_reach_the_sender_and_drive_unread_counts(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        for i in range(1, 11):
            await alice.client.send(chat, f"m{i}")
        await bob.wait_for_seq(chat, 10)

        async def bob_unread() -> int:
            (summary,) = [c for c in await bob.client.chats() if c.chat == chat]
            return summary.unread

        assert await bob_unread() == 10
        await bob.client.mark_delivered(chat, 10)
        await bob.client.mark_read(chat, 4)
        await wait_until(
            lambda: ("bob", "read", 4) in [(r.user, r.status, r.seq) for r in receipts(alice)],
            what="bob's read receipt at alice",
        )
        delivered = [r for r in receipts(alice) if r.status == "delivered"]
        assert delivered and delivered[-1].seq == 10 and delivered[-1].user == "bob"
        await server.node.settled()  # bob's receipts reached alice: they are stored
        assert await bob_unread() == 6
        await bob.client.mark_read(chat, 2)  # lower than the watermark: changes nothing
        await bob.client.mark_read(chat, 10)
        with anyio.fail_after(10):
            while await bob_unread() != 0:
                await anyio.sleep(0.05)


async def test_members_get_chat_updates(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("dave")) as dave,
    ):
        group = await alice.client.create_group("team", ["bob"])
        await alice.client.send(group.chat, "before dave")
        updated = await alice.client.update_members(group.chat, add=["dave"])
        assert sorted(updated.members) == ["alice", "bob", "dave"]
        await wait_until(lambda: bool(dave.of_type(ChatUpdated)), what="dave told of the group")
        assert dave.of_type(ChatUpdated)[-1].chat.chat == group.chat
        await dave.wait_for_seq(group.chat, 1)  # learned from the update, fetched from history
        assert [m.body for m in dave.messages[group.chat]] == ["before dave"]
        await alice.client.send(group.chat, "welcome dave")
        await dave.wait_for_seq(group.chat, 2)
        assert dave.seqs(group.chat) == [1, 2]
