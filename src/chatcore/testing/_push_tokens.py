"""``PushTokenStore`` conformance: what every backend of the port must do.

User names are unique per test; ``targets`` order is not part of the port.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.push._base import PushTarget, PushTokenStore, WebPushKeys
from chatcore.testing._backend import Make

__all__ = ["PushTokenStoreSuite"]

# An uncompressed P-256 point's shape (0x04 and 64 bytes) and a 16-byte auth secret.
_P256DH = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode().rstrip("=")
_AUTH = base64.urlsafe_b64encode(b"\x02" * 16).decode().rstrip("=")


class PushEnv:
    """One backend under test: a fresh ``store`` and names no other test uses."""

    def __init__(self, store: PushTokenStore) -> None:
        self.store = store
        self._tag = uuid.uuid4().hex[:8]

    def name(self, name: str) -> str:
        return f"{name}-{self._tag}"

    async def devices(self, user: str) -> dict[str, PushTarget]:
        found = await self.store.targets([user])
        by_device = {t.device: t for t in found}
        assert len(by_device) == len(found), f"a device listed twice: {found}"
        return by_device


def fcm(user: str, device: str, token: str = "fcm-token:1") -> PushTarget:
    return PushTarget(user, device, "fcm", token)


def apns(user: str, device: str, token: str = "ab" * 32) -> PushTarget:
    return PushTarget(user, device, "apns", token)


def webpush(
    user: str, device: str, endpoint: str = "https://fcm.googleapis.com/fcm/send/p1"
) -> PushTarget:
    return PushTarget(user, device, "webpush", endpoint, WebPushKeys(_P256DH, _AUTH))


class PushTokenStoreSuite:
    """The ``PushTokenStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new, not
    yet entered, empty ``PushTokenStore`` with the default ``TargetRules`` (at most 10
    devices per user, HTTPS endpoints of the browsers' push services only). The suite
    enters it and closes it.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_store(self) -> Make[PushTokenStore]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_store fixture")

    @pytest.fixture
    async def env(self, make_store: Make[PushTokenStore]) -> AsyncIterator[PushEnv]:
        async with AsyncExitStack() as stack:
            yield PushEnv(await stack.enter_async_context(await make_store()))

    async def test_no_targets_for_unknown_users(self, env: PushEnv) -> None:
        assert await env.store.targets([env.name("nobody")]) == []
        assert await env.store.targets([]) == []

    async def test_each_kind_round_trips(self, env: PushEnv) -> None:
        alice, bob = env.name("alice"), env.name("bob")
        phone, laptop, tablet = fcm(alice, "phone"), webpush(alice, "laptop"), apns(bob, "tablet")
        for target in (phone, laptop, tablet):
            await env.store.register(target)
        assert await env.devices(alice) == {"phone": phone, "laptop": laptop}
        found = await env.store.targets([alice, bob, alice])
        assert sorted(found, key=lambda t: t.device) == [laptop, phone, tablet]

    async def test_registering_again_replaces_the_devices_target(self, env: PushEnv) -> None:
        alice = env.name("alice")
        await env.store.register(fcm(alice, "phone", "old"))
        await env.store.register(fcm(alice, "phone", "new"))
        assert await env.devices(alice) == {"phone": fcm(alice, "phone", "new")}
        await env.store.register(apns(alice, "phone"))
        assert await env.devices(alice) == {"phone": apns(alice, "phone")}

    async def test_unregister_forgets_one_device_and_is_idempotent(self, env: PushEnv) -> None:
        alice = env.name("alice")
        await env.store.register(fcm(alice, "phone"))
        await env.store.register(fcm(alice, "tablet"))
        await env.store.unregister(alice, "phone")
        await env.store.unregister(alice, "phone")
        await env.store.unregister(env.name("nobody"), "phone")
        assert list(await env.devices(alice)) == ["tablet"]

    async def test_drop_forgets_only_that_very_target(self, env: PushEnv) -> None:
        alice = env.name("alice")
        await env.store.register(fcm(alice, "phone", "stale"))
        await env.store.register(fcm(alice, "phone", "fresh"))
        await env.store.drop(fcm(alice, "phone", "stale"))  # re-registered meanwhile: kept
        assert await env.devices(alice) == {"phone": fcm(alice, "phone", "fresh")}
        await env.store.drop(fcm(alice, "phone", "fresh"))
        await env.store.drop(fcm(alice, "phone", "fresh"))
        assert await env.store.targets([alice]) == []

    async def test_the_oldest_device_goes_past_ten(self, env: PushEnv) -> None:
        alice = env.name("alice")
        for i in range(12):
            await env.store.register(fcm(alice, f"d{i}"))
        assert set(await env.devices(alice)) == {f"d{i}" for i in range(2, 12)}

    async def test_concurrent_registrations_all_land(self, env: PushEnv) -> None:
        users = [env.name(f"u{i}") for i in range(20)]
        async with anyio.create_task_group() as tg:
            for user in users:
                tg.start_soon(env.store.register, fcm(user, "phone"))
        assert len(await env.store.targets(users)) == 20

    @pytest.mark.parametrize(
        "bad",
        [
            PushTarget("", "phone", "fcm", "tok"),
            PushTarget("u", "x" * 257, "fcm", "tok"),
            PushTarget("u", "phone", "fcm", ""),
            PushTarget("u", "phone", "fcm", "has space"),
            PushTarget("u", "phone", "fcm", "t" * 4097),
            PushTarget("u", "phone", "fcm", "tok", WebPushKeys(_P256DH, _AUTH)),
            PushTarget("u", "phone", "apns", "ab" * 31),
            PushTarget("u", "phone", "apns", "zz" * 32),
            PushTarget("u", "phone", "apns", "a" * 65),
            PushTarget("u", "phone", "webpush", "https://push.example/p"),
            PushTarget(
                "u", "phone", "webpush", "http://fcm.googleapis.com/p", WebPushKeys(_P256DH, _AUTH)
            ),
            PushTarget("u", "phone", "webpush", "file:///etc/passwd", WebPushKeys(_P256DH, _AUTH)),
            PushTarget(
                "u",
                "phone",
                "webpush",
                "https://u:p@fcm.googleapis.com/",
                WebPushKeys(_P256DH, _AUTH),
            ),
            PushTarget(
                "u",
                "phone",
                "webpush",
                "https://fcm.googleapis.com/" + "p" * 2048,
                WebPushKeys(_P256DH, _AUTH),
            ),
            PushTarget(
                "u", "phone", "webpush", "https://push.example/p", WebPushKeys(_P256DH, _AUTH)
            ),
            PushTarget("u", "phone", "webpush", "https://127.0.0.1/p", WebPushKeys(_P256DH, _AUTH)),
            PushTarget(
                "u", "phone", "webpush", "https://[::1]:8443/p", WebPushKeys(_P256DH, _AUTH)
            ),
            PushTarget("u", "phone", "webpush", "https://10.0.0.7/p", WebPushKeys(_P256DH, _AUTH)),
            PushTarget("u", "phone", "webpush", "https://localhost/p", WebPushKeys(_P256DH, _AUTH)),
            PushTarget(
                "u",
                "phone",
                "webpush",
                "https://fcm.googleapis.com:x/",
                WebPushKeys(_P256DH, _AUTH),
            ),
            PushTarget(
                "u",
                "phone",
                "webpush",
                "https://fcm.googleapis.com.evil.example/p",
                WebPushKeys(_P256DH, _AUTH),
            ),
            PushTarget(
                "u", "phone", "webpush", "https://fcm.googleapis.com/p", WebPushKeys("AAAA", _AUTH)
            ),
            PushTarget(
                "u", "phone", "webpush", "https://fcm.googleapis.com/p", WebPushKeys(_P256DH, "!!")
            ),
            PushTarget(
                "u",
                "phone",
                "webpush",
                "https://fcm.googleapis.com/p",
                WebPushKeys(_P256DH, "AAAA"),
            ),
        ],
        ids=lambda t: f"{t.kind}-{t.token[:40]}",
    )
    async def test_a_bad_target_is_refused_and_changes_nothing(
        self, env: PushEnv, bad: PushTarget
    ) -> None:
        user = env.name(bad.user) if bad.user else ""
        kept = fcm(env.name("u"), "phone")
        await env.store.register(kept)
        with pytest.raises(InvalidRequest):
            await env.store.register(PushTarget(user, bad.device, bad.kind, bad.token, bad.keys))
        assert await env.store.targets([env.name("u")]) == [kept]

    async def test_aclose_is_idempotent_and_later_calls_raise(self, env: PushEnv) -> None:
        async with env.store as entered:
            assert entered is env.store
        await env.store.aclose()
        with pytest.raises(ChatcoreClosed):
            await env.store.targets([env.name("alice")])
        with pytest.raises(ChatcoreClosed):
            await env.store.register(fcm(env.name("alice"), "phone"))
