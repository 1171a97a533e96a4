"""Push over the wire: devices register their push targets with ``push.register``, go
offline, and the local stand-ins of the push services (tests/push/services.py) receive
what the real ones would: coalesced, without a preview for encrypted messages; an
unregistered device gets nothing more, a target its service reports gone is dropped."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest
from chatcore.node import NodeOptions
from chatcore.protocol import PushKeysView
from chatcore.push import DevicePushNotifier, PushConfig, PushTarget
from chatcore.server import ServerSettings
from chatcore.store.cassandra import CassandraStores
from tests.client.harness import device
from tests.e2e.conftest import RunningServer, production_settings, running
from tests.envelopes import shaped_envelope
from tests.push.services import Fcm, PushService, serving
from tests.push.test_webpush import VAPID_PUBLIC, VAPID_RAW

pytestmark = pytest.mark.anyio


@dataclass
class PushWorld:
    server: RunningServer
    webpush: PushService
    fcm: Fcm

    @property
    def notifier(self) -> DevicePushNotifier:
        push = self.server.node.backends.push
        assert isinstance(push, DevicePushNotifier)
        return push

    async def targets(self, user: str) -> dict[str, PushTarget]:
        found = await self.server.node.backends.push_tokens.targets([user])
        return {t.device: t for t in found}

    def pushes_to(self, name: str) -> list[dict[str, Any]]:
        return [payload for to, payload, _ in self.webpush.received if to == name]

    async def gone_offline(self, user: str) -> None:
        """Wait until the registry holds no connection of ``user``: a device's close is
        recorded a moment after its socket closes, and a message delivered before that
        counts as delivered live (no push)."""
        registry = self.server.node.backends.registry
        with anyio.fail_after(10):
            while (await registry.lookup([user])).get(user):
                await anyio.sleep(0.02)

    async def wait_for_pushes(self, name: str, count: int) -> list[dict[str, Any]]:
        with anyio.fail_after(15):
            while len(self.pushes_to(name)) < count:
                await anyio.sleep(0.02)
        return self.pushes_to(name)


@asynccontextmanager
async def push_world(tmp_path: Path, backend: str) -> AsyncIterator[PushWorld]:
    webpush, fcm = PushService(VAPID_PUBLIC), Fcm()
    async with serving(webpush.app()) as webpush_url, serving(fcm.app()) as fcm_url:
        webpush.origin, fcm.origin = webpush_url, fcm_url
        (tmp_path / "vapid.key").write_text(VAPID_RAW)
        (tmp_path / "sa.json").write_bytes(msgspec.json.encode(fcm.account()))
        push = PushConfig(
            vapid_private_key_file=str(tmp_path / "vapid.key"),
            vapid_subject="mailto:ops@example.com",
            fcm_service_account_file=str(tmp_path / "sa.json"),
            fcm_url=fcm_url,
            webpush_hosts=("127.0.0.1",),
            allow_http_endpoints=True,
            allow_private_endpoints=True,
        )
        settings = ServerSettings(
            data_dir=tmp_path / "data",
            dev=True,
            node=NodeOptions(partitions=2),
            send_rate_per_s=1000,
            send_burst=1000,
            push=push,
        )
        async with AsyncExitStack() as stack:
            if backend == "production":
                base = await stack.enter_async_context(production_settings())
                assert base.backends is not None
                settings = replace(base, push=push, backends=_with_rules(base.backends, push))
            server = await stack.enter_async_context(running(settings))
            yield PushWorld(server, webpush, fcm)


def _with_rules(
    make: Callable[[], Backends | Awaitable[Backends]], push: PushConfig
) -> Callable[[], Awaitable[Backends]]:
    """The production backends with push target rules that let the local service in."""

    async def backends() -> Backends:
        pending = make()
        made = await pending if inspect.isawaitable(pending) else pending
        await made.push_tokens.aclose()
        stores = next(e for e in made.extra if isinstance(e, CassandraStores))
        made.push_tokens = stores.push_tokens(push.rules())
        return made

    return backends


@pytest.fixture(params=["embedded", pytest.param("production", marks=pytest.mark.services)])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PushWorld]:
    async with push_world(tmp_path, request.param) as made:
        yield made


@pytest.fixture
async def embedded_world(tmp_path: Path) -> AsyncIterator[PushWorld]:
    async with push_world(tmp_path, "embedded") as made:
        yield made


def keys_of(target: PushTarget) -> PushKeysView:
    assert target.keys is not None
    return PushKeysView(p256dh=target.keys.p256dh, auth=target.keys.auth)


async def register_webpush(world: PushWorld, user: str, device_name: str) -> PushTarget:
    target = world.webpush.subscribe(user, device_name, device_name)
    async with device(world.server.ws_url, world.server.token(user), device_name) as d:
        await d.client.register_push("webpush", target.token, keys=keys_of(target))
    return target


async def test_an_offline_device_gets_coalesced_pushes_and_no_preview_when_encrypted(
    world: PushWorld,
) -> None:
    laptop = await register_webpush(world, "bob", "laptop")
    async with device(world.server.ws_url, world.server.token("bob"), "phone") as phone:
        await phone.client.register_push("fcm", "fcm-phone-1")
    assert set(await world.targets("bob")) == {"laptop", "phone"}
    assert (await world.targets("bob"))["laptop"] == laptop
    await world.gone_offline("bob")

    async with device(world.server.ws_url, world.server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        await alice.client.send(chat, "see you at 8")
        (first,) = await world.wait_for_pushes("laptop", 1)
        assert first["title"] == "1 new message from alice"
        assert first["body"] == "see you at 8"
        await alice.client.send(chat, shaped_envelope("secret plan"), encrypted=True)
        await alice.client.send(chat, shaped_envelope("more"), encrypted=True)
        _, coalesced = await world.wait_for_pushes("laptop", 2)
    assert coalesced["title"] == "2 new messages from alice"
    assert coalesced.get("body") is None
    assert (
        shaped_envelope("secret plan")[:40]
        not in msgspec.json.encode(world.webpush.received).decode()
    )
    phone_pushes = [m for m in world.fcm.received if m["token"] == "fcm-phone-1"]
    assert phone_pushes[0]["notification"]["body"] == "see you at 8"
    assert all("body" not in m["notification"] for m in phone_pushes[1:])
    assert not world.webpush.errors and not world.fcm.errors


async def test_unregister_stops_pushes_and_a_gone_target_is_dropped(world: PushWorld) -> None:
    await register_webpush(world, "bob", "laptop")
    await register_webpush(world, "bob", "tablet")
    async with device(world.server.ws_url, world.server.token("bob"), "phone") as phone:
        await phone.client.register_push("fcm", "fcm-phone-2")
    async with device(world.server.ws_url, world.server.token("bob"), "laptop") as laptop:
        await laptop.client.unregister_push()
        await laptop.client.unregister_push()  # nothing left: still fine
    world.fcm.gone.add("fcm-phone-2")
    await world.gone_offline("bob")

    async with device(world.server.ws_url, world.server.token("alice")) as alice:
        chat = (await alice.client.create_group("plans", ["bob"])).chat
        await alice.client.send(chat, "hello")
        await world.wait_for_pushes("tablet", 1)
        await world.server.node.settled()  # the batch's pushes have all been sent
    assert world.pushes_to("laptop") == []
    assert set(await world.targets("bob")) == {"tablet"}  # the phone's token was gone
    assert world.notifier.stats.gone == 1


@pytest.mark.parametrize(
    ("kind", "token", "keys", "error"),
    [
        ("webpush", "https://evil.example/p", "ok", "not an allowed web push service"),
        ("webpush", "http://10.1.2.3/p", "ok", "not an allowed"),
        ("webpush", "{origin}/push/x", None, "needs keys"),
        ("webpush", "{origin}/push/x", PushKeysView(p256dh="AAAA", auth="AAAA"), "P-256"),
        ("fcm", "has spaces", None, "fcm token"),
        ("apns", "abc", None, "apns device token"),
        ("fcm", "ok-token", "ok", "no keys"),
    ],
)
async def test_a_bad_target_gets_a_clear_error_and_changes_nothing(
    embedded_world: PushWorld, kind: Any, token: str, keys: Any, error: str
) -> None:
    world = embedded_world
    good = await register_webpush(world, "carol", "laptop")
    if keys == "ok":
        keys = keys_of(good)
    async with device(world.server.ws_url, world.server.token("carol"), "laptop") as d:
        with pytest.raises(InvalidRequest, match=error):
            await d.client.register_push(kind, token.format(origin=world.webpush.origin), keys=keys)
        assert d.client.connected
    assert await world.targets("carol") == {"laptop": good}
