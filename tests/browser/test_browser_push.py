"""The browser page's Web Push in headless Chromium: the "Enable notifications" button,
the ``push.register`` frame it sends, and the service worker that shows a push.

What headless Chromium allows (recorded in docs/push.md): it registers the service
worker and grants the notification permission when the context is given it, but
refuses ``pushManager.subscribe`` ("Registration failed - permission denied": it has
no push service behind it). So the frame is checked with a subscription made by the
test's own Web Push service, and the worker is handed a push through the DevTools
protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from chatcore.node import NodeOptions
from chatcore.push import PushConfig
from chatcore.server import ServerSettings
from tests.browser.test_browser_chat import sign_in
from tests.e2e.conftest import RunningServer, running
from tests.push.services import PushService, serving
from tests.push.test_webpush import VAPID_PUBLIC, VAPID_RAW

pytestmark = pytest.mark.anyio


@pytest.fixture
async def webpush() -> AsyncIterator[PushService]:
    service = PushService(VAPID_PUBLIC)
    async with serving(service.app()) as url:
        service.origin = url
        yield service


@pytest.fixture
async def server(tmp_path: Path, webpush: PushService) -> AsyncIterator[RunningServer]:
    (tmp_path / "vapid.key").write_text(VAPID_RAW)
    push = PushConfig(
        vapid_private_key_file=str(tmp_path / "vapid.key"),
        vapid_subject="mailto:ops@example.com",
        webpush_hosts=("127.0.0.1", "fcm.googleapis.com"),
        allow_http_endpoints=True,
        allow_private_endpoints=True,
    )
    settings = ServerSettings(
        data_dir=tmp_path / "data", dev=True, node=NodeOptions(partitions=2), push=push
    )
    async with running(settings) as srv:
        yield srv


REGISTER = """async (sub) => {
  try {
    await window.chatcorePush.register({ toJSON: () => sub });
    return "ok";
  } catch (error) {
    return error.code ?? String(error);
  }
}"""


async def test_the_page_registers_a_subscription_over_the_socket(
    browser: Browser, server: RunningServer, webpush: PushService
) -> None:
    bob = await sign_in(browser, server, "bob")
    await expect(bob.page.get_by_role("button", name="Enable notifications")).to_be_visible()
    assert await bob.page.evaluate("window.chatcorePush.key") == VAPID_PUBLIC

    target = webpush.subscribe("bob", "ignored", "tab")
    assert target.keys is not None
    sub: dict[str, Any] = {
        "endpoint": target.token,
        "keys": {"p256dh": target.keys.p256dh, "auth": target.keys.auth},
    }
    assert await bob.page.evaluate(REGISTER, sub) == "ok"
    (stored,) = await server.node.backends.push_tokens.targets(["bob"])
    assert (stored.kind, stored.token, stored.keys) == ("webpush", target.token, target.keys)
    device = await bob.page.evaluate("localStorage.getItem('chatcore.device')")
    assert stored.device == device or device is None

    # a subscription the server refuses: a clear error, nothing changes
    bad = {**sub, "endpoint": "https://evil.example/push/1"}
    assert await bob.page.evaluate(REGISTER, bad) == "invalid"
    assert await server.node.backends.push_tokens.targets(["bob"]) == [stored]
    assert bob.errors == []


async def test_the_button_subscribes_as_far_as_headless_chromium_allows(
    browser: Browser, server: RunningServer
) -> None:
    bob = await sign_in(browser, server, "bob")
    page = bob.page
    await page.context.grant_permissions(["notifications"], origin=server.http_url)
    cdp = await page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(e["registrations"]),
    )
    await cdp.send("ServiceWorker.enable")
    button = page.get_by_role("button", name="Enable notifications")
    await button.click()
    # Headless Chromium has no push service: subscribe() is refused, and the button says so.
    await expect(button).to_have_attribute("data-state", "failed")
    assert "Registration failed" in (await button.get_attribute("title") or "")
    assert await server.node.backends.push_tokens.targets(["bob"]) == []
    scopes = await page.evaluate(
        "(async () => (await navigator.serviceWorker.getRegistrations()).map(r => r.scope))()"
    )
    assert scopes == [f"{server.http_url}/static/"]

    # The worker shows a push it is handed (through DevTools) as a notification per chat;
    # a push handed over before the worker is activated would be dropped: wait for it.
    state = await page.evaluate(
        """async () => {
          const r = (await navigator.serviceWorker.getRegistrations())[0];
          const worker = r.active ?? r.waiting ?? r.installing;
          if (worker.state !== "activated") {
            await new Promise((resolve) => worker.addEventListener("statechange", () => {
              if (worker.state === "activated") resolve();
            }));
          }
          return worker.state;
        }"""
    )
    assert state == "activated"
    (registration,) = [r for r in registrations if not r.get("isDeleted")][:1]
    payload = '{"title":"2 new messages from alice","body":null,"data":{"chat_id":"c1"}}'
    await cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": server.http_url,
            "registrationId": registration["registrationId"],
            "data": payload,
        },
    )
    shown = await page.evaluate(
        """async () => {
          const registration = (await navigator.serviceWorker.getRegistrations())[0];
          for (let i = 0; i < 100; i++) {
            const found = await registration.getNotifications();
            if (found.length) return found.map((n) => [n.title, n.body, n.tag]);
            await new Promise((r) => setTimeout(r, 50));
          }
          return [];
        }"""
    )
    assert shown == [["2 new messages from alice", "", "chat:c1"]]
    assert bob.errors == []
