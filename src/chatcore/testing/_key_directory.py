"""``KeyDirectory`` conformance: what every backend of the port must do.

User names are unique per test; ``keys`` order is not part of the port.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.keys._base import DeviceKey, KeyDirectory
from chatcore.testing._backend import Make

__all__ = ["KeyDirectorySuite"]


def public_key(n: int) -> str:
    """A 32-byte key's shape (the directory never uses a key, so any bytes do)."""
    return base64.urlsafe_b64encode(bytes([n]) * 32).decode().rstrip("=")


class KeyEnv:
    """One backend under test: a fresh ``directory`` and names no other test uses."""

    def __init__(self, directory: KeyDirectory) -> None:
        self.directory = directory
        self._tag = uuid.uuid4().hex[:8]

    def name(self, name: str) -> str:
        return f"{name}-{self._tag}"

    async def devices(self, user: str) -> dict[str, DeviceKey]:
        found = await self.directory.keys([user])
        by_device = {k.device: k for k in found}
        assert len(by_device) == len(found), f"a device listed twice: {found}"
        return by_device


class KeyDirectorySuite:
    """The ``KeyDirectory`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_directory``: it returns an async callable giving a new,
    not yet entered, empty ``KeyDirectory`` with the default ``KeyRules`` (at most 16
    devices per user). The suite enters it and closes it.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_directory(self) -> Make[KeyDirectory]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_directory fixture")

    @pytest.fixture
    async def env(self, make_directory: Make[KeyDirectory]) -> AsyncIterator[KeyEnv]:
        async with AsyncExitStack() as stack:
            yield KeyEnv(await stack.enter_async_context(await make_directory()))

    async def test_no_keys_for_unknown_users(self, env: KeyEnv) -> None:
        assert await env.directory.keys([env.name("nobody")]) == []
        assert await env.directory.keys([]) == []

    async def test_publish_then_fetch(self, env: KeyEnv) -> None:
        alice, bob = env.name("alice"), env.name("bob")
        keys = [
            DeviceKey(alice, "phone", 1, public_key(1)),
            DeviceKey(alice, "laptop", 3, public_key(2)),
            DeviceKey(bob, "phone", 1, public_key(3)),
        ]
        for key in keys:
            assert await env.directory.publish(key) is True
        assert await env.devices(alice) == {"phone": keys[0], "laptop": keys[1]}
        found = await env.directory.keys([alice, bob, alice, env.name("carol")])
        assert sorted(found, key=lambda k: (k.user, k.device)) == sorted(
            keys, key=lambda k: (k.user, k.device)
        )

    async def test_rotation_replaces_the_key(self, env: KeyEnv) -> None:
        alice = env.name("alice")
        await env.directory.publish(DeviceKey(alice, "phone", 1, public_key(1)))
        rotated = DeviceKey(alice, "phone", 2, public_key(2))
        assert await env.directory.publish(rotated) is True
        assert await env.devices(alice) == {"phone": rotated}

    async def test_same_key_again_changes_nothing(self, env: KeyEnv) -> None:
        key = DeviceKey(env.name("alice"), "phone", 4, public_key(1))
        assert await env.directory.publish(key) is True
        assert await env.directory.publish(key) is False
        assert await env.devices(key.user) == {"phone": key}

    @pytest.mark.parametrize(
        ("version", "key"),
        [(1, 9), (2, 9), (1, 1), (0, 9)],
        ids=["lower", "same-version-other-key", "same-key-lower", "zero"],
    )
    async def test_stale_versions_are_refused(self, env: KeyEnv, version: int, key: int) -> None:
        alice = env.name("alice")
        current = DeviceKey(alice, "phone", 2, public_key(1))
        await env.directory.publish(current)
        with pytest.raises(InvalidRequest):
            await env.directory.publish(DeviceKey(alice, "phone", version, public_key(key)))
        assert await env.devices(alice) == {"phone": current}

    @pytest.mark.parametrize(
        "bad",
        [
            "",
            "not base64!",
            base64.urlsafe_b64encode(b"\x01" * 31).decode().rstrip("="),
            base64.urlsafe_b64encode(b"\x01" * 33).decode().rstrip("="),
            base64.urlsafe_b64encode(b"\x01" * 32).decode(),  # padded
            base64.b64encode(b"\xff" * 32).decode().rstrip("="),  # standard alphabet
        ],
        ids=["empty", "not-base64", "short", "long", "padded", "std-alphabet"],
    )
    async def test_malformed_keys_are_refused(self, env: KeyEnv, bad: str) -> None:
        alice = env.name("alice")
        with pytest.raises(InvalidRequest):
            await env.directory.publish(DeviceKey(alice, "phone", 1, bad))
        assert await env.devices(alice) == {}

    async def test_bad_names_and_versions_are_refused(self, env: KeyEnv) -> None:
        alice = env.name("alice")
        for key in (
            DeviceKey(alice, "", 1, public_key(1)),
            DeviceKey(alice, "d" * 129, 1, public_key(1)),
            DeviceKey(alice, "phone", 2**53, public_key(1)),
            DeviceKey(alice, "phone", -1, public_key(1)),
        ):
            with pytest.raises(InvalidRequest):
                await env.directory.publish(key)
        assert await env.devices(alice) == {}

    async def test_a_new_device_past_the_limit_is_refused(self, env: KeyEnv) -> None:
        alice = env.name("alice")
        for n in range(16):
            await env.directory.publish(DeviceKey(alice, f"d{n}", 1, public_key(n)))
        with pytest.raises(InvalidRequest, match="revoke"):
            await env.directory.publish(DeviceKey(alice, "d16", 1, public_key(16)))
        assert len(await env.devices(alice)) == 16
        # A device that holds a key may still rotate it.
        assert await env.directory.publish(DeviceKey(alice, "d3", 2, public_key(99)))
        assert await env.directory.revoke(alice, "d0") is True
        assert await env.directory.publish(DeviceKey(alice, "d16", 1, public_key(16)))

    async def test_revoke(self, env: KeyEnv) -> None:
        alice = env.name("alice")
        await env.directory.publish(DeviceKey(alice, "phone", 5, public_key(1)))
        assert await env.directory.revoke(alice, "phone") is True
        assert await env.directory.revoke(alice, "phone") is False
        assert await env.devices(alice) == {}
        # A revoked device starts again from any version.
        assert await env.directory.publish(DeviceKey(alice, "phone", 1, public_key(2)))

    async def test_concurrent_rotations_keep_the_highest(self, env: KeyEnv) -> None:
        alice = env.name("alice")
        await env.directory.publish(DeviceKey(alice, "phone", 1, public_key(1)))
        refused: list[int] = []

        async def rotate(version: int) -> None:
            try:
                await env.directory.publish(DeviceKey(alice, "phone", version, public_key(version)))
            except InvalidRequest:
                refused.append(version)

        async with anyio.create_task_group() as tg:
            for version in range(2, 12):
                tg.start_soon(rotate, version)
        assert (await env.devices(alice))["phone"].version == 11
        assert 11 not in refused

    async def test_concurrent_new_devices_stop_at_the_limit(self, env: KeyEnv) -> None:
        """The device limit holds when new devices publish at once (no check-then-write race)."""
        alice = env.name("alice")
        outcomes: list[bool] = []

        async def publish(n: int) -> None:
            try:
                outcomes.append(
                    await env.directory.publish(DeviceKey(alice, f"d{n}", 1, public_key(n)))
                )
            except InvalidRequest:
                outcomes.append(False)

        async with anyio.create_task_group() as tg:
            for n in range(20):
                tg.start_soon(publish, n)
        assert outcomes.count(True) == 16
        assert len(await env.devices(alice)) == 16

    async def test_closed_directory_refuses_calls(self, make_directory: Make[KeyDirectory]) -> None:
        directory = await make_directory()
        async with directory:
            pass
        await directory.aclose()  # idempotent
        with pytest.raises(ChatcoreClosed):
            await directory.keys(["alice"])
        with pytest.raises(ChatcoreClosed):
            await directory.publish(DeviceKey("alice", "phone", 1, public_key(1)))
