"""The v1 scheme: what a device seals, every recipient device opens, and nobody else."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatcore.e2ee import decode_envelope
from chatcore.e2ee.scheme import DeviceKeyring, decrypt, encrypt, fingerprint
from chatcore.errors import InvalidRequest
from chatcore.keys import DeviceKey


def published(user: str, ring: DeviceKeyring) -> DeviceKey:
    return DeviceKey(user, ring.device, ring.version, ring.public_key)


def test_every_recipient_device_opens_it_and_the_sender_too() -> None:
    alice, bob_phone, bob_laptop = (DeviceKeyring.generate(d) for d in ("a1", "b1", "b2"))
    keys = [published("alice", alice), published("bob", bob_phone), published("bob", bob_laptop)]
    body = encrypt("meet at 8 🌙", chat="c1", sender="alice", sender_device="a1", recipients=keys)
    assert "meet" not in body
    for user, ring in (("alice", alice), ("bob", bob_phone), ("bob", bob_laptop)):
        assert decrypt(body, chat="c1", sender="alice", user=user, keyring=ring) == "meet at 8 🌙"
    env = decode_envelope(body)
    assert env.device == "a1" and len(env.keys) == 3


def test_others_and_moved_ciphertexts_do_not_open() -> None:
    alice, bob, eve = (DeviceKeyring.generate(d) for d in ("a1", "b1", "b1"))
    body = encrypt(
        "hi", chat="c1", sender="alice", sender_device="a1", recipients=[published("bob", bob)]
    )
    with pytest.raises(InvalidRequest, match="not encrypted for"):
        decrypt(body, chat="c1", sender="alice", user="alice", keyring=alice)
    with pytest.raises(InvalidRequest, match="authenticate"):  # same names, other key
        decrypt(body, chat="c1", sender="alice", user="bob", keyring=eve)
    with pytest.raises(InvalidRequest, match="authenticate"):  # moved to another chat
        decrypt(body, chat="c2", sender="alice", user="bob", keyring=bob)
    with pytest.raises(InvalidRequest, match="authenticate"):  # claimed by another sender
        decrypt(body, chat="c1", sender="mallory", user="bob", keyring=bob)


def test_rotation_keeps_old_messages_readable(tmp_path: Path) -> None:
    bob = DeviceKeyring.generate("b1")
    old = encrypt(
        "v1", chat="c", sender="a", sender_device="a1", recipients=[published("bob", bob)]
    )
    first_public = bob.public_key
    assert bob.rotate() == 2 and bob.public_key != first_public
    new = encrypt(
        "v2", chat="c", sender="a", sender_device="a1", recipients=[published("bob", bob)]
    )
    path = tmp_path / "bob.keys"
    bob.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    again = DeviceKeyring.load(path)
    assert again.version == 2 and again.public_key == bob.public_key
    assert decrypt(old, chat="c", sender="a", user="bob", keyring=again) == "v1"
    assert decrypt(new, chat="c", sender="a", user="bob", keyring=again) == "v2"
    del again.pairs[1]
    with pytest.raises(InvalidRequest, match="version 1"):
        decrypt(old, chat="c", sender="a", user="bob", keyring=again)


def test_bad_inputs() -> None:
    with pytest.raises(InvalidRequest, match="no device key"):
        encrypt("x", chat="c", sender="a", sender_device="a1", recipients=[])
    with pytest.raises(InvalidRequest, match="32 bytes"):
        encrypt(
            "x",
            chat="c",
            sender="a",
            sender_device="a1",
            recipients=[DeviceKey("b", "b1", 1, "AAAA")],
        )


def test_fingerprint_is_stable_and_short() -> None:
    ring = DeviceKeyring.generate("d")
    assert fingerprint(ring.public_key) == fingerprint(ring.public_key)
    assert len(fingerprint(ring.public_key).split()) == 8
