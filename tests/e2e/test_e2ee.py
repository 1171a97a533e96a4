"""End-to-end encryption over the real server: keys published and fetched over the wire,
messages sealed by the SDK for every member device and opened by each, never by the server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from chatcore.client import ChatUpdated, Connected, DeviceKeysChanged, MessageReceived
from chatcore.e2ee import decode_envelope
from chatcore.e2ee.scheme import DeviceKeyring
from chatcore.errors import InvalidRequest, Unauthorized
from tests.client.harness import Device, MeddlingConnector, device, wait_until
from tests.e2e.conftest import RunningServer
from tests.e2e.test_server_protocol import hello, raw, recv

pytestmark = pytest.mark.anyio


def texts(d: Device, chat: str) -> list[str | None]:
    return [e.text for e in d.of_type(MessageReceived) if e.chat == chat]


async def test_a_sealed_message_opens_on_every_member_device_and_not_on_the_server(
    server: RunningServer, tmp_path: Path
) -> None:
    marker = f"plaintext-{uuid.uuid4().hex}"
    bob_user, alice_user = f"bob-{uuid.uuid4().hex[:6]}", f"alice-{uuid.uuid4().hex[:6]}"
    async with (
        device(server.ws_url, server.token(alice_user), "a1", keyring=tmp_path / "a1") as alice,
        device(server.ws_url, server.token(bob_user), "b1", keyring=tmp_path / "b1") as phone,
        device(server.ws_url, server.token(bob_user), "b2", keyring=tmp_path / "b2") as laptop,
    ):
        chat = (await alice.client.create_direct(bob_user)).chat
        await alice.client.send(chat, marker, encrypted=True)
        for d in (alice, phone, laptop):
            await d.wait_for_seq(chat, 1)
            assert texts(d, chat) == [marker]
            (received,) = d.messages[chat]
            assert received.encrypted and marker not in received.body
        env = decode_envelope(phone.messages[chat][0].body)
        assert sorted((k.user, k.device) for k in env.keys) == [
            (alice_user, "a1"),
            (bob_user, "b1"),
            (bob_user, "b2"),
        ]
        await server.node.settled()
        page = await server.node.history(alice_user, chat)
        assert [m.encrypted for m in page.messages] == [True]
        assert marker not in page.messages[0].body

        # Rotation: the next message is sealed for the new key, the old one still opens.
        assert await phone.client.rotate_key() == 2
        keys = await alice.client.fetch_keys([bob_user])
        assert {(k.device, k.version) for k in keys[bob_user]} == {("b1", 2), ("b2", 1)}
        await alice.client.send(chat, "after rotation", encrypted=True)
        await phone.wait_for_seq(chat, 2)
        assert texts(phone, chat) == [marker, "after rotation"]
        second = decode_envelope(phone.messages[chat][1].body)
        assert {(k.device, k.version) for k in second.keys if k.user == bob_user} == {
            ("b1", 2),
            ("b2", 1),
        }

        # An edit is sealed as a send is; its event opens on the other devices.
        await alice.client.edit(chat, 2, "after rotation, edited", encrypted=True)
        await laptop.wait_for_seq(chat, 3)
        assert texts(laptop, chat)[-1] == "after rotation, edited"
        assert laptop.messages[chat][-1].kind == "edit"
        await server.node.settled()
        stored = (await server.node.history(alice_user, chat)).messages
        assert all("after rotation" not in m.body for m in stored)


async def test_no_key_no_send_and_a_device_without_keyring_gets_a_clear_marker(
    server: RunningServer, tmp_path: Path
) -> None:
    carol = f"carol-{uuid.uuid4().hex[:6]}"
    async with (
        device(server.ws_url, server.token("alice"), "a1", keyring=tmp_path / "a1") as alice,
        device(server.ws_url, server.token(carol), "c1") as plain,
    ):
        chat = (await alice.client.create_direct(carol)).chat
        with pytest.raises(InvalidRequest, match=f"no device key for \\['{carol}'\\]"):
            await alice.client.send(chat, "secret", encrypted=True)
        assert (await server.node.chat("alice", chat)).last_seq == 0  # nothing was sent
        with pytest.raises(Unauthorized):
            await alice.client.fetch_keys(["mallory"])
        # carol's other device has a keyring; her keyless device sees the envelope only.
        async with device(
            server.ws_url, server.token(carol), "c2", keyring=tmp_path / "c2"
        ) as keyed:
            await alice.client.send(chat, "for c2", encrypted=True)
            await keyed.wait_for_seq(chat, 1)
            assert texts(keyed, chat) == ["for c2"]
        await plain.wait_for_seq(chat, 1)
        (event,) = plain.of_type(MessageReceived)
        assert event.message.encrypted and event.text is None


async def test_a_lost_keyring_publishes_above_the_old_version(
    server: RunningServer, tmp_path: Path
) -> None:
    user = f"dora-{uuid.uuid4().hex[:6]}"
    ring = DeviceKeyring.generate("d1", version=5)
    ring.save(tmp_path / "old")
    async with device(server.ws_url, server.token(user), "d1", keyring=tmp_path / "old") as d:
        assert (await d.client.fetch_keys([user]))[user][0].version == 5
    async with device(server.ws_url, server.token(user), "d1", keyring=tmp_path / "new") as d:
        (key,) = (await d.client.fetch_keys([user]))[user]
        assert key.version == 6 and key.public_key != ring.public_key
        assert d.client.e2ee is not None and d.client.e2ee.keyring.public_key == key.public_key
    assert DeviceKeyring.load(tmp_path / "new").version == 6


async def test_bad_keys_and_bodies_over_the_wire_change_nothing(server: RunningServer) -> None:
    user = f"eve-{uuid.uuid4().hex[:6]}"
    good = DeviceKeyring.generate("d1").public_key
    async with raw(server) as ws:
        await hello(ws, server.token(user))

        async def ask(frame: str) -> dict[str, object]:
            await ws.send(frame)
            return await recv(ws)

        def pub(rid: int, version: int, key: str) -> str:
            return json.dumps(
                {"type": "keys.publish", "id": rid, "version": version, "public_key": key}
            )

        assert (await ask(pub(1, 3, good)))["type"] == "ok"
        for n, (version, key, why) in enumerate(
            [(2, good, "stale key version 2"), (4, "AAAA", "32 bytes"), (4, "no!", "base64url")],
            start=2,
        ):
            answer = await ask(pub(n, version, key))
            assert answer["code"] == "invalid" and why in str(answer["message"]), answer
        fetch = json.dumps({"type": "keys.fetch", "id": 9, "users": [user]})
        keys = await ask(fetch)
        assert keys["users"] == [
            {"user": user, "devices": [{"device": "d1", "version": 3, "public_key": good}]}
        ]
        stranger = await ask('{"type":"keys.fetch","id":10,"users":["nobody-at-all"]}')
        assert stranger["code"] == "unauthorized"
        both = await ask('{"type":"keys.fetch","id":11,"users":["x"],"chat":"c"}')
        assert both["code"] == "bad_frame"
        assert (await ask('{"type":"keys.revoke","id":12}'))["type"] == "ok"
        assert (await ask(fetch))["users"] == [{"user": user, "devices": []}]


def key_events(d: Device, user: str) -> list[tuple[str, int | None]]:
    return [(e.device, e.version) for e in d.of_type(DeviceKeysChanged) if e.user == user]


async def test_keys_changed_reaches_the_users_devices_and_peers_not_strangers(
    server: RunningServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    alice_user, bob_user, carol_user = f"alice-{tag}", f"bob-{tag}", f"carol-{tag}"
    async with (
        device(server.ws_url, server.token(alice_user), "a1") as alice,
        device(server.ws_url, server.token(bob_user), "b1", keyring=tmp_path / "b1") as phone,
        device(server.ws_url, server.token(carol_user), "c1") as carol,
    ):
        await alice.client.create_direct(bob_user)
        async with device(
            server.ws_url, server.token(bob_user), "b2", keyring=tmp_path / "b2"
        ) as laptop:
            assert laptop.client.e2ee is not None
            await wait_until(lambda: key_events(alice, bob_user) == [("b2", 1)], what="publish")
            await wait_until(lambda: ("b2", 1) in key_events(phone, bob_user), what="own device")
            (pushed,) = alice.of_type(DeviceKeysChanged)
            assert pushed == DeviceKeysChanged(bob_user, "b2", 1)
            await phone.client.rotate_key()
            await wait_until(lambda: ("b1", 2) in key_events(laptop, bob_user), what="rotation")
            await phone.client.revoke_key("b2")
            await wait_until(lambda: ("b2", None) in key_events(alice, bob_user), what="revoke")
        assert key_events(alice, bob_user) == [("b2", 1), ("b1", 2), ("b2", None)]
        await phone.client.revoke_key("no-such-device")  # nothing revoked: no push
        # A push carol does get, sent after all of the above on the same bus: had any
        # keys.changed been meant for her, it would have come first.
        await alice.client.create_direct(carol_user)
        await wait_until(lambda: bool(carol.of_type(ChatUpdated)), what="carol's chat push")
        assert carol.of_type(DeviceKeysChanged) == []
        assert key_events(alice, bob_user) == [("b2", 1), ("b1", 2), ("b2", None)]


async def test_the_sdk_seals_for_a_new_device_once_keys_changed_arrives(
    server: RunningServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    alice_user, bob_user = f"alice-{tag}", f"bob-{tag}"
    deaf = MeddlingConnector(lose=lambda frame: frame.get("type") == "keys.changed")
    async with (
        device(server.ws_url, server.token(alice_user), "a1", keyring=tmp_path / "a1") as alice,
        device(
            server.ws_url, server.token(alice_user), "a2", keyring=tmp_path / "a2", connector=deaf
        ) as unaware,
        device(server.ws_url, server.token(bob_user), "b1", keyring=tmp_path / "b1") as phone,
    ):
        chat = (await alice.client.create_direct(bob_user)).chat
        await alice.client.send(chat, "one", encrypted=True)
        await unaware.client.send(chat, "two", encrypted=True)  # both keep bob's keys now
        async with device(
            server.ws_url, server.token(bob_user), "b2", keyring=tmp_path / "b2"
        ) as laptop:
            await wait_until(lambda: ("b2", 1) in key_events(alice, bob_user), what="the push")
            await wait_until(lambda: bool(deaf.lost), what="a2 losing the push")
            await alice.client.send(chat, "three", encrypted=True)
            await unaware.client.send(chat, "four", encrypted=True)
            await phone.wait_for_seq(chat, 4)
            await laptop.wait_for_seq(chat, 4)
            bodies = {m.seq: decode_envelope(m.body) for m in phone.messages[chat]}
            # alice fetched again after the push: b2 can read "three".
            assert (bob_user, "b2") in {(k.user, k.device) for k in bodies[3].keys}
            assert [e.text for e in laptop.of_type(MessageReceived) if e.seq == 3] == ["three"]
            # a2 never heard of b2 and sealed "four" with the keys it kept.
            assert (bob_user, "b2") not in {(k.user, k.device) for k in bodies[4].keys}
            # A new session drops what a2 kept: its next message reaches b2 too.
            deaf.cut()
            await wait_until(
                lambda: sum(isinstance(e, Connected) for e in unaware.events) == 2,
                what="a2 reconnecting",
            )
            await unaware.client.send(chat, "five", encrypted=True)
            await laptop.wait_for_seq(chat, 5)
            assert [e.text for e in laptop.of_type(MessageReceived) if e.seq == 5] == ["five"]
