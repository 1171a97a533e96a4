"""Push across processes on the production backends: a device registers its FCM token
through a ``chatcore gateway``; a separate ``chatcore worker``, configured by
``CHATCORE_PUSH_*``, reads it from Cassandra and pushes through the local FCM
stand-in, and notifies the signed webhook too."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from chatcore.registry.redis import RedisConnectionRegistry
from tests.client.harness import device
from tests.integration.test_scale_out import Deployment, deployment
from tests.push.services import Fcm, WebhookReceiver, serving
from tests.services import REDIS_URL

__all__ = ["deployment"]  # the fixture, used by name

pytestmark = [pytest.mark.anyio, pytest.mark.services]

HOOK_SECRET = "webhook-secret-of-the-deployment-0123"


async def gone_offline(deployment: Deployment, user: str) -> None:
    """Wait until the registry holds no connection of ``user``: a device's close is
    recorded a moment after its socket closes, and a message delivered before that
    counts as delivered live (no push)."""
    prefix = deployment.env["CHATCORE_REDIS_PREFIX"]
    async with RedisConnectionRegistry(REDIS_URL, prefix=prefix) as registry:
        with anyio.fail_after(10):
            while (await registry.lookup([user])).get(user):
                await anyio.sleep(0.05)


async def test_a_worker_process_pushes_to_a_token_registered_at_a_gateway(
    deployment: Deployment, tmp_path: Path
) -> None:
    fcm, hook = Fcm(), WebhookReceiver(HOOK_SECRET)
    async with serving(fcm.app()) as fcm_url, serving(hook.app()) as hook_url:
        fcm.origin = fcm_url
        (tmp_path / "sa.json").write_bytes(msgspec.json.encode(fcm.account()))
        deployment.env.update(
            CHATCORE_PUSH_FCM_SERVICE_ACCOUNT_FILE=str(tmp_path / "sa.json"),
            CHATCORE_PUSH_FCM_URL=fcm_url,
            CHATCORE_PUSH_WEBHOOK_URL=f"{hook_url}/hook",
            CHATCORE_PUSH_WEBHOOK_SECRET=HOOK_SECRET,
        )
        await deployment.worker("worker")
        _, url = await deployment.gateway("gateway")
        async with device(url, deployment.token("bob"), "phone") as phone:
            await phone.client.register_push("fcm", "bob-phone-token")
        await gone_offline(deployment, "bob")
        async with device(url, deployment.token("alice")) as alice:
            chat = (await alice.client.create_direct("bob")).chat
            await alice.client.send(chat, "meet at the station")
            with anyio.fail_after(30):
                while not (fcm.received and hook.received):
                    await anyio.sleep(0.05)
    (message,) = fcm.received
    assert message["token"] == "bob-phone-token"
    assert message["notification"] == {
        "title": "1 new message from alice",
        "body": "meet at the station",
    }
    assert [n["user"] for n in hook.received] == ["bob"] and hook.refused == 0
