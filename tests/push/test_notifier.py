"""``DevicePushNotifier`` end to end: targets registered in a store, then notify, and the
local services receive what the real ones would; a gone target leaves the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import anyio.lowlevel
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.offline import PushNotification
from chatcore.push import (
    DevicePushNotifier,
    MemoryPushTokenStore,
    PushKind,
    PushOutcome,
    PushStats,
    PushTarget,
    TargetRules,
)
from chatcore.push.apns import ApnsSender
from chatcore.push.fcm import FcmSender
from chatcore.push.webpush import WebPushSender
from tests.push.services import Apns, Fcm, PushService, pem, serving
from tests.push.test_webpush import VAPID_PUBLIC, VAPID_RAW

pytestmark = pytest.mark.anyio


@dataclass
class Services:
    webpush: PushService
    fcm: Fcm
    apns: Apns
    apns_url: str
    http2: httpx.AsyncClient

    def senders(self) -> list[WebPushSender | FcmSender | ApnsSender]:
        return [
            WebPushSender(vapid_private_key=VAPID_RAW, vapid_subject="mailto:ops@example.com"),
            FcmSender(self.fcm.account(), base_url=self.fcm.origin),
            ApnsSender(
                key=pem(self.apns.key),
                key_id=self.apns.key_id,
                team_id=self.apns.team_id,
                topic=self.apns.topic,
                base_url=self.apns_url,
                http=self.http2,
            ),
        ]


@pytest.fixture
async def services() -> AsyncIterator[Services]:
    webpush, fcm, apns = PushService(VAPID_PUBLIC), Fcm(), Apns()
    http2 = httpx.AsyncClient(http2=True, http1=False)
    async with (
        serving(webpush.app()) as webpush_url,
        serving(fcm.app()) as fcm_url,
        serving(apns.app()) as apns_url,
        http2,
    ):
        webpush.origin, fcm.origin = webpush_url, fcm_url
        yield Services(webpush, fcm, apns, apns_url, http2)


def store() -> MemoryPushTokenStore:
    return MemoryPushTokenStore(
        rules=TargetRules(
            allow_http_endpoints=True, webpush_hosts=("127.0.0.1",), allow_private_endpoints=True
        )
    )


async def test_every_device_of_every_offline_user_is_reached(services: Services) -> None:
    tokens = store()
    bob_laptop = services.webpush.subscribe("bob", "laptop", "bob-laptop")
    bob_phone = PushTarget("bob", "phone", "fcm", "fcm-bob")
    carol_phone = PushTarget("carol", "iphone", "apns", "c0" * 32)
    for target in (bob_laptop, bob_phone, carol_phone):
        await tokens.register(target)

    notes = [
        PushNotification("bob", "c1", 12, ("Alice",), 40, preview="hi"),
        PushNotification("carol", "g1", 3, ("Alice", "Bob"), 9, preview="psst", encrypted=True),
        PushNotification("dave", "c9", 1, ("Alice",), 1),  # no devices: nothing to send
    ]
    async with tokens, DevicePushNotifier(tokens, services.senders()) as notifier:
        await notifier.notify(notes)
        assert notifier.stats == PushStats(sent=3)

    [(_, web, _)] = services.webpush.received
    assert (web["title"], web["body"]) == ("12 new messages from Alice", "hi")
    [fcm] = services.fcm.received
    assert (fcm["token"], fcm["notification"]["body"]) == ("fcm-bob", "hi")
    [(token, apns, _)] = services.apns.received
    assert token == "c0" * 32
    assert apns["aps"]["alert"] == {"title": "3 new messages from Alice and Bob"}  # no preview


async def test_gone_targets_are_dropped_and_the_rest_still_sent(services: Services) -> None:
    tokens = store()
    laptop = services.webpush.subscribe("bob", "laptop", "old-browser")
    phone = PushTarget("bob", "phone", "fcm", "fcm-stale")
    iphone = PushTarget("bob", "iphone", "apns", "d0" * 32)
    tablet = PushTarget("bob", "tablet", "fcm", "fcm-fresh")
    for target in (laptop, phone, iphone, tablet):
        await tokens.register(target)
    services.webpush.gone.add("old-browser")
    services.fcm.gone.add("fcm-stale")
    services.apns.unregistered.add("d0" * 32)

    async with tokens, DevicePushNotifier(tokens, services.senders()) as notifier:
        await notifier.notify([PushNotification("bob", "c1", 1, ("Alice",), 5)])
        assert notifier.stats == PushStats(sent=1, gone=3)
        assert await tokens.targets(["bob"]) == [tablet]
    assert [m["token"] for m in services.fcm.received] == ["fcm-fresh"]


async def test_a_hanging_or_missing_service_is_counted_not_raised() -> None:
    async def hang(request: Request) -> Response:
        await request.body()
        await anyio.Event().wait()  # never answers
        return Response()

    tokens = store()
    stuck = PushTarget("bob", "phone", "fcm", "fcm-bob")
    no_sender = PushTarget("bob", "iphone", "apns", "e0" * 32)
    await tokens.register(stuck)
    await tokens.register(no_sender)
    fcm = Fcm()
    app = Starlette(routes=[Route("/{path:path}", hang, methods=["POST"])])
    async with serving(app) as url, tokens:
        fcm.origin = url
        async with DevicePushNotifier(
            tokens, [FcmSender(fcm.account(), base_url=url)], timeout_s=0.5
        ) as notifier:
            with anyio.fail_after(10):
                await notifier.notify([PushNotification("bob", "c1", 1, ("Alice",), 5)])
            assert notifier.stats == PushStats(failed=2)
            assert len(await tokens.targets(["bob"])) == 2  # a failure drops nothing
    with pytest.raises(ChatcoreClosed):
        await notifier.notify([])
    await notifier.aclose()


async def test_bad_options_are_refused(services: Services) -> None:
    senders = services.senders()
    try:
        with pytest.raises(InvalidRequest):
            DevicePushNotifier(store(), [senders[1], senders[1]])
        with pytest.raises(InvalidRequest):
            DevicePushNotifier(store(), senders, max_concurrency=0)
        with pytest.raises(InvalidRequest):
            DevicePushNotifier(store(), senders, timeout_s=0)
    finally:
        for sender in senders:
            await sender.aclose()


class CountingSender:
    """A ``PushSender`` of its own (the port, not a stand-in for chatcore code) that
    holds each send until two are in flight, and records the most ever in flight."""

    kind: PushKind = "fcm"

    def __init__(self) -> None:
        self.in_flight = self.peak = 0
        self.two = anyio.Event()

    async def send(self, target: PushTarget, notification: PushNotification) -> PushOutcome:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight == 2:
            self.two.set()
        await self.two.wait()
        await anyio.lowlevel.checkpoint()
        self.in_flight -= 1
        return "sent"

    async def __aenter__(self) -> CountingSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        pass


async def test_sends_are_bounded_by_max_concurrency() -> None:
    tokens, sender = store(), CountingSender()
    for i in range(8):
        await tokens.register(PushTarget("bob", f"d{i}", "fcm", f"t{i}"))
    async with DevicePushNotifier(tokens, [sender], max_concurrency=2) as notifier:
        await notifier.notify([PushNotification("bob", "c1", 1, ("Alice",), 5)])
        assert notifier.stats == PushStats(sent=8)
    assert sender.peak == 2
