"""``WebhookPushNotifier`` against a local receiver that verifies with ``verify_webhook``."""

from __future__ import annotations

import time

import httpx
import msgspec
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.offline import PushNotification
from chatcore.push import SIGNATURE_HEADER, PushStats, sign_webhook
from chatcore.push.webhook import WebhookPushNotifier
from tests.push.services import WebhookReceiver, serving

pytestmark = pytest.mark.anyio

SECRET = "a-webhook-secret-of-32-bytes!!!!"
TWELVE = PushNotification("bob", "c1", 12, ("Alice",), 40, preview="hi")
SECRET_NOTE = PushNotification("carol", "c2", 1, ("Alice",), 7, preview="psst", encrypted=True)


async def test_notifications_arrive_signed_and_batched() -> None:
    receiver = WebhookReceiver(SECRET)
    async with (
        serving(receiver.app()) as url,
        WebhookPushNotifier(f"{url}/hook", secret=SECRET, max_batch=1) as hook,
    ):
        await hook.notify([TWELVE, SECRET_NOTE])
        assert hook.stats == PushStats(sent=2)
    assert receiver.refused == 0
    assert receiver.received == [
        {
            "user": "bob",
            "chat_id": "c1",
            "count": 12,
            "senders": ["Alice"],
            "last_seq": 40,
            "encrypted": False,
            "title": "12 new messages from Alice",
            "body": "hi",
        },
        {
            "user": "carol",
            "chat_id": "c2",
            "count": 1,
            "senders": ["Alice"],
            "last_seq": 7,
            "encrypted": True,
            "title": "1 new message from Alice",
            "body": None,
        },
    ]


async def test_a_forged_or_stale_request_is_refused_by_the_receiver() -> None:
    receiver = WebhookReceiver(SECRET)
    body = msgspec.json.encode({"notifications": []})
    async with serving(receiver.app()) as url, httpx.AsyncClient() as client:
        forged = sign_webhook("another-secret-of-32-bytes!!!!!!", body, timestamp=int(time.time()))
        stale = sign_webhook(SECRET, body, timestamp=int(time.time()) - 3600)
        for value in (forged, stale):
            answer = await client.post(
                f"{url}/hook", content=body, headers={SIGNATURE_HEADER: value}
            )
            assert answer.status_code == 401
        # A notifier whose clock is an hour behind signs stale requests: refused, counted.
        async with WebhookPushNotifier(
            f"{url}/hook", secret=SECRET, clock=lambda: time.time() - 3600
        ) as hook:
            await hook.notify([TWELVE])
            assert hook.stats == PushStats(failed=1)
    assert receiver.refused == 3
    assert receiver.received == []


async def test_a_receiver_that_is_down_is_counted_not_raised() -> None:
    async with serving(WebhookReceiver(SECRET).app()) as url:
        pass  # stopped: nothing listens there any more
    async with WebhookPushNotifier(f"{url}/hook", secret=SECRET, timeout_s=2) as hook:
        await hook.notify([TWELVE])
        assert hook.stats == PushStats(failed=1)
    with pytest.raises(ChatcoreClosed):
        await hook.notify([TWELVE])
    await hook.aclose()


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("ftp://example.com/hook", {}),
        ("https:///hook", {}),
        ("https://example.com/hook", {"secret": "short"}),
        ("https://example.com/hook", {"max_batch": 0}),
        ("https://example.com/hook", {"timeout_s": 0}),
    ],
)
def test_bad_options_are_refused(url: str, options: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        WebhookPushNotifier(url, **{"secret": SECRET, **options})  # type: ignore[arg-type]
