"""``FcmSender`` against a local OAuth2 token endpoint and FCM v1 send endpoint."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatcore.errors import InvalidRequest, Unavailable
from chatcore.offline import PushNotification
from chatcore.push import PushTarget
from chatcore.push.fcm import FcmSender, ServiceAccount
from tests.push.services import Fcm, pem, serving

pytestmark = pytest.mark.anyio

NOTE = PushNotification("bob", "c1", 12, ("Alice",), 40, preview="hi")


@pytest.fixture
async def fcm() -> AsyncIterator[Fcm]:
    fcm = Fcm()
    async with serving(fcm.app()) as url:
        fcm.origin = url
        yield fcm


def phone(token: str = "fcm-token:APA91b") -> PushTarget:
    return PushTarget("bob", "phone", "fcm", token)


async def test_the_token_flow_then_the_v1_message(fcm: Fcm) -> None:
    async with FcmSender(fcm.account(), base_url=fcm.origin) as sender:
        assert await sender.send(phone(), NOTE) == "sent"
        assert await sender.send(phone("second"), NOTE) == "sent"
    assert fcm.errors == []
    assert fcm.tokens_issued == 1  # the access token is kept, not fetched per message
    assert fcm.received[0] == {
        "token": "fcm-token:APA91b",
        "notification": {"title": "12 new messages from Alice", "body": "hi"},
        "data": {"chat_id": "c1", "last_seq": "40", "count": "12"},
        "android": {"collapse_key": "c1"},
    }


async def test_the_access_token_is_fetched_again_before_it_expires(fcm: Fcm) -> None:
    # The token lives 3599 s and is renewed 60 s early; the clock ends at the real time,
    # so that the token endpoint finds every assertion fresh.
    start = time.time() - 3540
    now = [start]
    async with FcmSender(fcm.account(), base_url=fcm.origin, clock=lambda: now[0]) as sender:
        await sender.send(phone(), NOTE)
        now[0] = start + 3538
        await sender.send(phone(), NOTE)
        assert fcm.tokens_issued == 1
        now[0] = start + 3540
        await sender.send(phone(), NOTE)
    assert fcm.tokens_issued == 2


async def test_an_unregistered_token_is_gone(fcm: Fcm) -> None:
    fcm.gone.add("stale")
    async with FcmSender(fcm.account(), base_url=fcm.origin) as sender:
        assert await sender.send(phone("stale"), NOTE) == "gone"


async def test_a_key_the_token_endpoint_does_not_know_is_refused(fcm: Fcm) -> None:
    wrong = msgspec.structs.replace(
        fcm.account(),
        private_key=pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    )
    async with FcmSender(wrong, base_url=fcm.origin) as sender:
        with pytest.raises(InvalidRequest):
            await sender.send(phone(), NOTE)
    assert fcm.received == []


async def test_an_unreachable_service_is_unavailable(fcm: Fcm) -> None:
    async with FcmSender(fcm.account(), base_url="http://127.0.0.1:9", timeout_s=2) as sender:
        with pytest.raises(Unavailable):
            await sender.send(phone(), NOTE)  # the token endpoint answers; FCM does not


def test_a_service_account_is_read_from_its_json() -> None:
    account = ServiceAccount.from_json(
        b'{"type": "service_account", "project_id": "p", "client_email": "e@p", '
        b'"private_key": "k", "private_key_id": "1"}'
    )
    assert (account.project_id, account.token_uri) == ("p", "https://oauth2.googleapis.com/token")
    with pytest.raises(InvalidRequest):
        ServiceAccount.from_json(b'{"project_id": "p"}')


def test_a_key_that_is_not_rsa_is_refused() -> None:
    ec_key = pem(ec.generate_private_key(ec.SECP256R1()))
    account = msgspec.structs.replace(Fcm().account(), private_key=ec_key)
    with pytest.raises(InvalidRequest):
        FcmSender(account)
