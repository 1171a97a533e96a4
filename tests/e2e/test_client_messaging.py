"""The SDK against the real server: many messages, one order for everyone, history, errors."""

from __future__ import annotations

import uuid

import anyio
import pytest

from chatcore.client import ChatClient, ChatUpdated, Connected, MessageReceived, SyncCompleted
from chatcore.errors import InvalidRequest, NotMember, Unauthorized
from chatcore.protocol import SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK, AcceptedFrame
from tests.client.harness import Device, device, wait_until
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


def assert_same_contiguous_order(devices: list[Device], chat: str, total: int) -> None:
    """Every device holds seq 1..total once, in order, and all agree on which message is which."""
    reference = devices[0].messages[chat]
    assert [m.seq for m in reference] == list(range(1, total + 1))
    ids = [m.message_id for m in reference]
    assert len(set(ids)) == total, "a message was stored twice"
    for other in devices[1:]:
        assert [m.seq for m in other.messages[chat]] == list(range(1, total + 1))
        assert [m.message_id for m in other.messages[chat]] == ids


async def send_all(client: ChatClient, chat: str, bodies: list[str], senders: int) -> None:
    """Send ``bodies`` from ``senders`` concurrent tasks sharing one client."""

    async def worker(part: list[str]) -> None:
        for body in part:
            await client.send(chat, body)

    async with anyio.create_task_group() as tg:
        for i in range(senders):
            tg.start_soon(worker, bodies[i::senders])


@pytest.mark.parametrize("bob_speaks", [SUBPROTOCOL_JSON, SUBPROTOCOL_MSGPACK])
async def test_direct_chat_hundreds_of_messages_both_ways(
    server: RunningServer, bob_speaks: str
) -> None:
    per_side = 150
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob"), subprotocol=bob_speaks) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        assert (await bob.client.create_direct("alice")).chat == chat, "one direct chat per pair"
        from_alice = [f"a-{i}" for i in range(per_side)]
        from_bob = [f"b-{i}" for i in range(per_side)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(send_all, alice.client, chat, from_alice, 4)
            tg.start_soon(send_all, bob.client, chat, from_bob, 4)
        total = 2 * per_side
        await alice.wait_for_seq(chat, total)
        await bob.wait_for_seq(chat, total)
        assert_same_contiguous_order([alice, bob], chat, total)
        assert sorted(m.body for m in bob.messages[chat]) == sorted(from_alice + from_bob)
        # one sending task's messages keep their order (it awaited each accepted)
        alice_seen = [m.body for m in bob.messages[chat] if m.sender == "alice"]
        first_worker = [b for b in alice_seen if b in from_alice[0::4]]
        assert first_worker == from_alice[0::4]


async def test_group_of_five_everyone_sees_one_order(server: RunningServer) -> None:
    users = ["ann", "ben", "cat", "dan", "eve"]
    per_user = 60
    async with (
        device(server.ws_url, server.token("ann")) as ann,
        device(server.ws_url, server.token("ben"), subprotocol=SUBPROTOCOL_MSGPACK) as ben,
        device(server.ws_url, server.token("cat")) as cat,
        device(server.ws_url, server.token("dan"), subprotocol=SUBPROTOCOL_MSGPACK) as dan,
        device(server.ws_url, server.token("eve")) as eve,
    ):
        everyone = [ann, ben, cat, dan, eve]
        group = await ann.client.create_group("five", users[1:])
        assert sorted(group.members) == users
        chat = group.chat
        await wait_until(
            lambda: all(d.of_type(ChatUpdated) for d in everyone[1:]),
            what="the new group pushed to every member",
        )
        async with anyio.create_task_group() as tg:
            for user, member in zip(users, everyone, strict=True):
                bodies = [f"{user}-{i}" for i in range(per_user)]
                tg.start_soon(send_all, member.client, chat, bodies, 3)
        total = per_user * len(users)
        for member in everyone:
            await member.wait_for_seq(chat, total, timeout_s=30)
        assert_same_contiguous_order(everyone, chat, total)
        assert len({m.body for m in ann.messages[chat]}) == total


async def test_the_sender_receives_its_own_message_with_its_client_msg_id(
    server: RunningServer,
) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        accepted = await alice.client.send(chat, "note to self", client_msg_id="cm-1")
        assert accepted.client_msg_id == "cm-1"
        assert accepted.chat == chat
        await alice.wait_for_seq(chat, 1)
        (mine,) = alice.messages[chat]
        assert (mine.client_msg_id, mine.message_id, mine.body) == (
            "cm-1",
            accepted.message_id,
            "note to self",
        )


async def test_a_repeated_client_msg_id_is_stored_once(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        first = await alice.client.send(chat, "once", client_msg_id="dup-1")
        again = await alice.client.send(chat, "once", client_msg_id="dup-1")
        both: list[AcceptedFrame] = []

        async def send_twice() -> None:
            both.append(await alice.client.send(chat, "twice", client_msg_id="dup-2"))

        async with anyio.create_task_group() as tg:  # the second joins the pending first
            tg.start_soon(send_twice)
            tg.start_soon(send_twice)
        await alice.client.send(chat, "end")
        assert again.client_msg_id == first.client_msg_id == "dup-1"
        assert len(both) == 2 and both[0] is both[1], "a pending id joins the first send"
        await bob.wait_for_seq(chat, 3)
        assert [m.body for m in bob.messages[chat]] == ["once", "twice", "end"]
        await server.node.settled()  # history is written beside delivery
        stored = [m.client_msg_id async for m in bob.client.history(chat, after=0)]
        assert stored[:2] == ["dup-1", "dup-2"] and len(stored) == 3
        # the stored message is the first accepted one
        assert bob.messages[chat][0].message_id == first.message_id


async def test_media_and_encrypted_messages_round_trip(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob"), subprotocol=SUBPROTOCOL_MSGPACK) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        uploaded = await alice.client.upload(b"%PDF-1.4 a small document", name="p.pdf")
        picture = uploaded.attachment()
        await alice.client.send(chat, "look", kind="file", attachment=picture)
        await alice.client.send(chat, "c2VjcmV0", encrypted=True)
        with pytest.raises(InvalidRequest):
            await alice.client.send(chat, kind="file")  # a file needs its attachment
        await bob.wait_for_seq(chat, 2)
        image, secret = bob.messages[chat]
        assert image.kind == "file"
        assert image.attachment is not None
        assert (image.attachment.blob, image.attachment.name) == (picture.blob, "p.pdf")
        assert await bob.client.download(image) == b"%PDF-1.4 a small document"
        assert (secret.encrypted, secret.body) == (True, "c2VjcmV0")


async def test_history_pages_backwards_and_forwards(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        for i in range(1, 121):
            await alice.client.send(chat, f"m{i}")
        await alice.wait_for_seq(chat, 120)
        await server.node.settled()

        newest_first = [m.seq async for m in alice.client.history(chat, page=25)]
        assert newest_first == list(range(120, 0, -1))
        before = [m.seq async for m in alice.client.history(chat, before=10, page=4)]
        assert before == list(range(9, 0, -1))
        forwards = [m.seq async for m in alice.client.history(chat, after=50, page=30)]
        assert forwards == list(range(51, 121))
        assert [m.body async for m in alice.client.history(chat, after=118)] == ["m119", "m120"]
        assert [m async for m in alice.client.history(chat, after=120)] == []

        page = await alice.client.history_page(chat, before=101, limit=200)
        assert [m.seq for m in page.messages] == list(range(1, 101))
        assert not page.has_more
        latest = await alice.client.history_page(chat, limit=5)
        assert [m.seq for m in latest.messages] == [116, 117, 118, 119, 120]
        assert latest.has_more
        with pytest.raises(InvalidRequest):
            await alice.client.history_page(chat, limit=0)
        with pytest.raises(InvalidRequest):
            await alice.client.history_page(chat, before=5, after=1)


async def test_server_errors_raise_the_matching_exception(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("mallory")) as mallory,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        with pytest.raises(NotMember):
            await mallory.client.send(chat, "let me in")
        with pytest.raises(NotMember):
            await mallory.client.history_page(chat)
        # a chat that does not exist is answered as one she is not in (no probing)
        with pytest.raises(NotMember):
            await alice.client.history_page("no-such-chat")
        with pytest.raises(NotMember):
            await alice.client.send("no-such-chat", "hello?")
        # the connection stays open after errors
        assert alice.client.connected
        assert await alice.client.ping() >= 0


async def test_a_refused_token_raises_unauthorized_and_does_not_retry(
    server: RunningServer,
) -> None:
    client = ChatClient.connect(server.ws_url, token="not-a-jwt", device="d1")
    with anyio.fail_after(10), pytest.raises(Unauthorized):
        async with client:
            pass
    with pytest.raises(Unauthorized):
        await client.send("c", "x")


async def test_token_provider_is_asked_on_every_connect(server: RunningServer) -> None:
    asked: list[str] = []

    async def provider() -> str:
        asked.append("token")
        return server.token("alice")

    client = ChatClient(server.ws_url, token_provider=provider, device="d1")
    async with client:
        assert client.user == "alice"
        assert len(asked) == 1
        await server.kill_connections()
        await wait_until(lambda: len(asked) == 2 and client.connected, what="a reconnect")
    assert not client.connected


async def test_events_start_with_connected_and_sync(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice"), f"d-{uuid.uuid4().hex[:6]}") as a:
        await wait_until(lambda: bool(a.of_type(SyncCompleted)), what="the first sync")
        first = a.events[0]
        assert isinstance(first, Connected)
        assert (first.user, first.reconnected) == ("alice", False)
        assert a.of_type(MessageReceived) == []
