"""``ApnsSender`` against a local APNs speaking HTTP/2 (hypercorn, h2c with prior knowledge).

The real APNs is HTTP/2 over TLS; plaintext HTTP/2 keeps the test off TLS teardown races
while still checking that every request really arrived over HTTP/2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chatcore.errors import InvalidRequest, Unavailable
from chatcore.offline import PushNotification
from chatcore.push import PushTarget
from chatcore.push.apns import ApnsSender
from tests.push.services import Apns, pem, serving

pytestmark = pytest.mark.anyio

NOTE = PushNotification("bob", "c1", 12, ("Alice",), 40, preview="hi")
TOKEN = "a1" * 32


class Local:
    """The local APNs, and an HTTP/2-only client (closed before the server)."""

    def __init__(self, apns: Apns, url: str, http: httpx.AsyncClient) -> None:
        self.apns, self.url, self.http = apns, url, http

    def sender(self, **options: object) -> ApnsSender:
        http = options.pop("http", None) or self.http
        return ApnsSender(
            key=str(options.pop("key", pem(self.apns.key))),
            key_id=self.apns.key_id,
            team_id=self.apns.team_id,
            topic=self.apns.topic,
            base_url=self.url,
            http=http,  # type: ignore[arg-type]
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
async def local() -> AsyncIterator[Local]:
    apns = Apns()
    http = httpx.AsyncClient(http2=True, http1=False)
    async with serving(apns.app()) as url, http:
        yield Local(apns, url, http)


def device(token: str = TOKEN) -> PushTarget:
    return PushTarget("bob", "iphone", "apns", token)


async def test_a_push_arrives_over_http2_with_token_auth(local: Local) -> None:
    async with local.sender() as sender:
        assert await sender.send(device(), NOTE) == "sent"
    assert local.apns.http_versions == ["2"]
    [(token, payload, headers)] = local.apns.received
    assert token == TOKEN
    assert payload["aps"]["alert"] == {"title": "12 new messages from Alice", "body": "hi"}
    assert payload["aps"]["thread-id"] == "c1"
    assert headers["apns-topic"] == "com.example.chat"
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-collapse-id"] == "c1"


async def test_the_provider_token_is_reused_then_renewed(local: Local) -> None:
    import time

    now = [time.time() - 3100]
    async with local.sender(clock=lambda: now[0]) as sender:
        await sender.send(device(), NOTE)
        now[0] += 10
        await sender.send(device(), NOTE)
        now[0] += 3000  # past token_refresh_s: a new token, else APNs says ExpiredProviderToken
        await sender.send(device(), NOTE)
    tokens = [h["authorization"] for _, _, h in local.apns.received]
    assert tokens[0] == tokens[1] != tokens[2]


@pytest.mark.parametrize("token", ["b2" * 32, "BadToken" * 8])
async def test_unregistered_and_bad_device_tokens_are_gone(local: Local, token: str) -> None:
    local.apns.unregistered.add("b2" * 32)
    async with local.sender() as sender:
        assert await sender.send(device(token), NOTE) == "gone"
    assert local.apns.received == []


async def test_a_wrong_signing_key_is_refused(local: Local) -> None:
    other = pem(ec.generate_private_key(ec.SECP256R1()))
    async with local.sender(key=other) as sender:
        with pytest.raises(InvalidRequest, match="InvalidProviderToken"):
            await sender.send(device(), NOTE)


async def test_http1_is_not_apns(local: Local) -> None:
    http = httpx.AsyncClient()  # HTTP/1.1 only
    async with http, local.sender(http=http) as sender:
        with pytest.raises(Unavailable, match="HTTP/2"):
            await sender.send(device(), NOTE)
    assert local.apns.http_versions == ["1.1"]


@pytest.mark.parametrize(
    "options",
    [
        {"key": "not a key"},
        {"key": "RSA"},
        {"team_id": ""},
        {"token_refresh_s": 3600},
        {"ttl_s": -1},
    ],
)
def test_bad_options_are_refused(options: dict[str, str | int]) -> None:
    values: dict[str, object] = {
        "key": pem(ec.generate_private_key(ec.SECP256R1())),
        "key_id": "K",
        "team_id": "T",
        "topic": "com.example",
        **options,
    }
    if values["key"] == "RSA":
        values["key"] = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(InvalidRequest):
        ApnsSender(**values)  # type: ignore[arg-type]
