"""The SDK recovers: cut connections, lost frames, offline members, retried sends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from chatcore.client import (
    ClientOptions,
    Connected,
    Disconnected,
    HistorySkipped,
    MessageReceived,
    SyncCompleted,
)
from chatcore.protocol import SUBPROTOCOL_MSGPACK
from tests.client.harness import MeddlingConnector, device, wait_until
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio

FAST = ClientOptions(backoff_initial_s=0.05, backoff_max_s=0.5)


async def test_offline_member_catches_up_from_its_cursors(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        async with device(server.ws_url, server.token("bob")) as bob:
            for i in range(1, 6):
                await alice.client.send(chat, f"early {i}")
            await bob.wait_for_seq(chat, 5)
            saved = bob.client.cursors()
        assert saved[chat] == 5
        for i in range(6, 41):  # bob is offline
            await alice.client.send(chat, f"late {i}")
        await server.node.settled()
        async with device(server.ws_url, server.token("bob"), cursors=saved) as bob:
            await bob.wait_for_seq(chat, 40)
            await wait_until(lambda: bool(bob.of_type(SyncCompleted)), what="sync")
            assert bob.seqs(chat) == list(range(6, 41)), "only what was missed, once, in order"
            (synced,) = bob.of_type(SyncCompleted)[0].chats
            assert (synced.chat, synced.last_seq, synced.unread) == (chat, 40, 40)


async def test_a_new_device_without_cursors_gets_the_chats_it_missed(
    server: RunningServer,
) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        group = await alice.client.create_group("team", ["bob", "carol"])
        for i in range(1, 31):
            await alice.client.send(group.chat, f"m{i}")
        async with device(server.ws_url, server.token("carol"), "laptop") as carol:
            await carol.wait_for_seq(group.chat, 30)
            assert carol.seqs(group.chat) == list(range(1, 31))
            assert [m.body for m in carol.messages[group.chat]][:2] == ["m1", "m2"]


async def test_backfill_limit_skips_old_messages_and_says_so(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        for i in range(1, 51):
            await alice.client.send(chat, f"m{i}")
        await server.node.settled()
        options = ClientOptions(backfill_limit=10)
        async with device(server.ws_url, server.token("bob"), options=options) as bob:
            await bob.wait_for_seq(chat, 50)
            assert bob.seqs(chat) == list(range(41, 51))
            assert bob.of_type(HistorySkipped) == [HistorySkipped(chat, 0, 40)]
            skipped = [e for e in bob.events if isinstance(e, HistorySkipped | MessageReceived)]
            assert isinstance(skipped[0], HistorySkipped), "the skip is announced first"
            older = [m.seq async for m in bob.client.history(chat, before=41)]
            assert older == list(range(40, 0, -1)), "skipped messages stay readable"


async def test_lost_message_frames_are_fetched_before_later_ones_are_delivered(
    server: RunningServer,
) -> None:
    lose = {3, 4, 10, 25}

    def lost_in_transit(frame: dict[str, Any]) -> bool:
        return frame.get("type") == "message" and frame.get("seq") in lose

    connector = MeddlingConnector(lose=lost_in_transit)
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob"), connector=connector) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        for i in range(1, 31):
            await alice.client.send(chat, f"m{i}")
        await bob.wait_for_seq(chat, 30)
        assert bob.seqs(chat) == list(range(1, 31))
        assert sorted(f["seq"] for f in connector.lost) == sorted(lose), "the frames were lost"
        assert [m.body for m in bob.messages[chat]][9] == "m10"


async def test_a_send_whose_answer_is_lost_is_retried_and_stored_once(
    server: RunningServer,
) -> None:
    """The connection drops after the server took the send but before ``accepted`` arrived."""

    def lose_accepted_then_cut(frame: dict[str, Any]) -> bool:
        first = not connector.lost
        if first and frame.get("type") == "accepted" and frame.get("client_msg_id") == "fragile":
            connector.cut()
            return True
        return False

    connector = MeddlingConnector(lose=lose_accepted_then_cut)
    async with (
        device(server.ws_url, server.token("alice"), options=FAST, connector=connector) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        await alice.client.send(chat, "before")
        with anyio.fail_after(15):
            accepted = await alice.client.send(chat, "fragile", client_msg_id="fragile")
        await alice.client.send(chat, "after")
        assert accepted.client_msg_id == "fragile"
        assert len(connector.opened) >= 2, "it went out again on a new connection"
        await bob.wait_for_seq(chat, 3)
        assert [m.body for m in bob.messages[chat]] == ["before", "fragile", "after"]
        await server.node.settled()
        stored = [m.client_msg_id async for m in bob.client.history(chat)]
        assert stored.count("fragile") == 1
        await alice.wait_for_seq(chat, 3)
        assert alice.seqs(chat) == [1, 2, 3]


async def test_connections_killed_mid_stream_lose_nothing(server: RunningServer) -> None:
    total = 200
    async with (
        device(server.ws_url, server.token("alice"), options=FAST) as alice,
        device(server.ws_url, server.token("bob"), "b1", options=FAST) as bob,
        device(
            server.ws_url, server.token("bob"), "b2", options=FAST, subprotocol=SUBPROTOCOL_MSGPACK
        ) as bob2,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        sent: list[str] = []

        async def stream() -> None:
            for i in range(1, total + 1):
                await alice.client.send(chat, f"m{i}")
                sent.append(f"m{i}")

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream)
            await wait_until(lambda: len(sent) >= 40, what="the stream under way")
            await server.kill_connections()  # 1012: everybody reconnects at once
            await wait_until(lambda: len(sent) >= 120, what="the stream going on")
            await server.kill_connections()
        for member in (alice, bob, bob2):
            await member.wait_for_seq(chat, total, timeout_s=30)
            assert member.seqs(chat) == list(range(1, total + 1))
            assert [m.body for m in member.messages[chat]] == [f"m{i}" for i in range(1, total + 1)]
            assert len(member.of_type(Disconnected)) >= 2
            assert [c.reconnected for c in member.of_type(Connected)][:2] == [False, True]


async def test_a_socket_cut_under_the_client_recovers_every_message(
    server: RunningServer,
) -> None:
    total = 150
    connector = MeddlingConnector()
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob"), options=FAST, connector=connector) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat

        async def stream() -> None:
            for i in range(1, total + 1):
                await alice.client.send(chat, f"m{i}")

        def back_after(cuts: int) -> Callable[[], bool]:
            return lambda: len(bob.of_type(Connected)) > cuts

        async with anyio.create_task_group() as tg:
            tg.start_soon(stream)
            await bob.wait_for_seq(chat, 30)
            for cuts in (1, 2):  # TCP abort: no close frame, the client backs off and reconnects
                connector.cut()
                # the next cut hits the new session (a burst can carry bob far past 30 at once)
                await wait_until(back_after(cuts), what=f"bob back after cut {cuts}")
        await bob.wait_for_seq(chat, total, timeout_s=30)
        assert bob.seqs(chat) == list(range(1, total + 1))
        assert len(connector.opened) >= 3
        closes = [d.close_code for d in bob.of_type(Disconnected)]
        assert closes[:2] == [None, None], "a cut has no close frame"
        assert all(d.reconnecting for d in bob.of_type(Disconnected))


async def test_sends_made_while_disconnected_go_out_in_order_on_reconnect(
    server: RunningServer,
) -> None:
    connector = MeddlingConnector()
    slow = ClientOptions(backoff_initial_s=0.5, backoff_max_s=0.5)
    async with (
        device(server.ws_url, server.token("alice"), options=slow, connector=connector) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        connector.cut()
        await wait_until(lambda: not alice.client.connected, what="the cut noticed")
        accepted: list[str] = []

        async def send(body: str) -> None:
            accepted.append((await alice.client.send(chat, body)).client_msg_id)

        async with anyio.create_task_group() as tg:
            for i in range(1, 11):
                tg.start_soon(send, f"offline {i}")
                await anyio.sleep(0)
        assert len(accepted) == 10
        await bob.wait_for_seq(chat, 10)
        assert [m.body for m in bob.messages[chat]] == [f"offline {i}" for i in range(1, 11)]
