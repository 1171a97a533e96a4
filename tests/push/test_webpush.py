"""``WebPushSender`` against a local push service that checks VAPID and decrypts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chatcore.errors import InvalidRequest
from chatcore.offline import PushNotification
from chatcore.push import PushTarget
from chatcore.push.webpush import WebPushSender
from tests.push.services import PushService, b64url, pem, serving

pytestmark = pytest.mark.anyio

VAPID = ec.generate_private_key(ec.SECP256R1())
VAPID_RAW = b64url(VAPID.private_numbers().private_value.to_bytes(32, "big"))
VAPID_PUBLIC = b64url(
    VAPID.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
)
NOTE = PushNotification("bob", "c1", 3, ("Alice", "Bob"), 40, preview="see you at 8")


@pytest.fixture
async def service() -> AsyncIterator[PushService]:
    service = PushService(VAPID_PUBLIC)
    async with serving(service.app()) as url:
        service.origin = url
        yield service


@pytest.mark.parametrize("key", [VAPID_RAW, pem(VAPID)], ids=["raw", "pem"])
async def test_the_payload_decrypts_at_the_push_service(service: PushService, key: str) -> None:
    target = service.subscribe("bob", "laptop", "b1")
    async with WebPushSender(vapid_private_key=key, vapid_subject="mailto:ops@example.com") as s:
        assert await s.send(target, NOTE) == "sent"
    assert service.errors == []
    [(name, payload, headers)] = service.received
    assert name == "b1"
    assert payload == {
        "title": "3 new messages from Alice and Bob",
        "body": "see you at 8",
        "data": {"chat_id": "c1", "last_seq": 40, "count": 3},
    }
    assert headers["ttl"] == "86400"
    assert headers["urgency"] == "high"
    assert len(headers["topic"]) <= 32


async def test_an_encrypted_message_sends_no_preview(service: PushService) -> None:
    target = service.subscribe("bob", "laptop", "b1")
    secret = PushNotification("bob", "c1", 1, ("Alice",), 41, preview="psst", encrypted=True)
    async with WebPushSender(vapid_private_key=VAPID_RAW, vapid_subject="mailto:o@e.com") as s:
        await s.send(target, secret)
    [(_, payload, _)] = service.received
    assert payload["body"] is None


async def test_an_expired_subscription_is_gone(service: PushService) -> None:
    target = service.subscribe("bob", "laptop", "b1")
    service.gone.add("b1")
    async with WebPushSender(vapid_private_key=VAPID_RAW, vapid_subject="mailto:o@e.com") as s:
        assert await s.send(target, NOTE) == "gone"


async def test_another_applications_key_is_refused(service: PushService) -> None:
    target = service.subscribe("bob", "laptop", "b1")
    other = b64url(
        ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    )
    async with WebPushSender(vapid_private_key=other, vapid_subject="mailto:o@e.com") as s:
        with pytest.raises(InvalidRequest):
            await s.send(target, NOTE)
    assert service.received == []


async def test_a_target_of_another_kind_is_refused() -> None:
    async with WebPushSender(vapid_private_key=VAPID_RAW, vapid_subject="mailto:o@e.com") as s:
        with pytest.raises(InvalidRequest):
            await s.send(PushTarget("bob", "phone", "fcm", "tok"), NOTE)


@pytest.mark.parametrize(
    "options",
    [
        {"vapid_private_key": "not-a-key"},
        {"vapid_subject": "ops@example.com"},
        {"jwt_lifetime_s": 86401},
        {"ttl_s": -1},
        {"timeout_s": 0},
    ],
)
def test_bad_options_are_refused(options: dict[str, object]) -> None:
    values: dict[str, Any] = {
        "vapid_private_key": VAPID_RAW,
        "vapid_subject": "mailto:o@e.com",
        **options,
    }
    with pytest.raises(InvalidRequest):
        WebPushSender(**values)


@pytest.mark.parametrize("key", [VAPID_RAW, pem(VAPID)], ids=["raw", "pem"])
def test_the_application_server_key_is_the_vapid_public_key(key: str) -> None:
    from chatcore.push.webpush import application_server_key

    assert application_server_key(key) == VAPID_PUBLIC
    sender = WebPushSender(vapid_private_key=key, vapid_subject="mailto:ops@example.com")
    assert sender.application_server_key == VAPID_PUBLIC


def test_a_bad_vapid_key_is_refused() -> None:
    from chatcore.errors import InvalidRequest
    from chatcore.push.webpush import application_server_key

    with pytest.raises(InvalidRequest, match="P-256"):
        application_server_key("not a key")
