"""The browser client against the real reference server, in headless Chromium.

Each user is a separate browser context (own storage, own WebSocket), driven only
through the page the way a person would: log in by name, start a chat, type.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, Page, ViewportSize, WebSocketRoute, expect

from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
SLOW = 15_000  # ms: reconnecting waits out a backoff


@dataclass
class Client:
    """One signed-in user's page, and the script errors it raised."""

    user: str
    page: Page
    errors: list[str] = field(default_factory=list)

    async def send(self, text: str) -> None:
        box = self.page.locator("#composer-input")
        await box.fill(text)
        await box.press("Enter")

    async def open_chat(self, title: str) -> None:
        await self.page.locator(".chat-item", has_text=title).click()
        await expect(self.page.locator(".conv-title")).to_have_text(title)


async def sign_in(
    browser: Browser, server: RunningServer, user: str, *, viewport: ViewportSize = DESKTOP
) -> Client:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    client = Client(user, page)
    page.on("pageerror", lambda error: client.errors.append(str(error)))
    page.on(  # a Content-Security-Policy violation is reported on the console
        "console",
        lambda m: client.errors.append(m.text) if "Content Security Policy" in m.text else None,
    )
    await page.goto(server.http_url)
    await page.get_by_label("Your name").fill(user)
    await page.get_by_role("button", name="Continue").click()
    await expect(page.locator("#me-name")).to_have_text(user)
    await expect(page.locator("#banner")).to_be_hidden()
    return client


async def test_two_users_chat_and_see_read_ticks(
    browser: Browser, server: RunningServer, tmp_path: Path
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")

    # alice starts a direct chat with bob from the "new chat" dialog
    await alice.page.get_by_role("button", name="New chat").click()
    await alice.page.get_by_label("Username").fill("bob")
    await alice.page.get_by_role("button", name="Start chat").click()
    await expect(alice.page.locator(".conv-title")).to_have_text("bob")
    # bob has taken no part in a chat with alice yet: his presence is hidden from her
    await expect(alice.page.locator(".conv-status")).to_have_text("offline")
    await alice.send("Hi Bob 👋")
    await alice.send("Are we still on for the design review at 3?")
    mine = alice.page.locator(".row.mine .tick")
    await expect(mine).to_have_count(2)

    # bob is online but has not opened the chat: delivered (✓✓), not read
    for i in range(2):
        await expect(mine.nth(i)).to_have_attribute("data-status", "delivered")
    entry = bob.page.locator(".chat-item", has_text="alice")
    await expect(entry.locator(".badge")).to_have_text("2")
    await expect(entry.locator(".chat-preview")).to_contain_text("design review at 3?")

    # bob opens the chat: his badge goes, alice's ticks turn read (blue)
    await bob.open_chat("alice")
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(
        ["Hi Bob 👋", "Are we still on for the design review at 3?"]
    )
    await expect(entry.locator(".badge")).to_have_count(0)
    await expect(bob.page.locator(".conv-status")).to_have_text("online")  # alice made it
    for i in range(2):
        await expect(mine.nth(i)).to_have_attribute("data-status", "read")

    # alice types: bob sees it in the strip above his composer and in the header
    await alice.page.locator("#composer-input").press_sequentially("Perfect")
    await expect(bob.page.locator("#typing")).to_have_text("alice is typing…")
    await expect(bob.page.locator(".conv-status")).to_have_text("typing…")
    await alice.page.locator("#composer-input").press("Enter")
    await expect(bob.page.locator("#typing")).to_have_text("")

    # bob answers on two lines (Shift+Enter); alice has the chat open, so it is read
    box = bob.page.locator("#composer-input")
    await box.fill("Yes! See you there.")
    await box.press("Shift+Enter")
    await box.press_sequentially("I'll bring the mockups.")
    await box.press("Enter")
    await expect(alice.page.locator(".row.theirs .body")).to_have_text(
        "Yes! See you there.\nI'll bring the mockups."
    )
    await expect(bob.page.locator(".row.mine .tick")).to_have_attribute("data-status", "read")
    await expect(mine.nth(2)).to_have_attribute("data-status", "read")

    # the server stored each message once, in the order the pages show
    chat_id = await alice.page.locator(".chat-item").first.get_attribute("data-chat")
    assert chat_id is not None
    page = await server.node.history("alice", chat_id)
    assert [(m.seq, m.sender) for m in page.messages] == [
        (1, "alice"),
        (2, "alice"),
        (3, "alice"),
        (4, "bob"),
    ]

    # a group created elsewhere shows up in the list with its unread message
    group = await server.node.create_chat(
        "carol", kind="group", members=["alice", "bob"], title="Design team"
    )
    await server.node.send(
        "carol", group.chat_id, client_msg_id="c-1", body="Mockups are in the shared folder 🎨"
    )
    team = alice.page.locator(".chat-item", has_text="Design team")
    await expect(team.locator(".chat-preview")).to_have_text(
        "carol: Mockups are in the shared folder 🎨"
    )
    await expect(team.locator(".badge")).to_have_text("1")

    await alice.page.locator("#composer-input").fill("")
    path = tmp_path / "browser-client.png"
    await alice.page.screenshot(path=str(path))
    assert (await anyio.Path(path).stat()).st_size > 10_000
    if target := os.environ.get("CHATCORE_SCREENSHOT_DIR"):
        await anyio.Path(target).mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(shutil.copy, path, Path(target) / path.name)
    assert alice.errors == [] and bob.errors == []


async def test_group_shows_sender_names_and_read_by_all(
    browser: Browser, server: RunningServer
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    await alice.page.get_by_role("button", name="New group").click()
    await alice.page.get_by_label("Group name").fill("Launch")
    await alice.page.get_by_label("Members").fill("bob, carol")
    await alice.page.get_by_role("button", name="Create group").click()
    await expect(alice.page.locator(".conv-title")).to_have_text("Launch")
    await expect(alice.page.locator(".conv-status")).to_have_text(
        "3 members · bob, carol, You (admin)"
    )
    await alice.send("Ship it Friday?")

    await bob.open_chat("Launch")
    await expect(bob.page.locator(".row.theirs .sender")).to_have_text("alice")
    # bob read it, carol (never online) has not: one tick, "read by 1 of 2"
    tick = alice.page.locator(".row.mine .tick")
    await expect(tick).to_have_attribute("title", "Read by 1 of 2")
    await expect(tick).to_have_attribute("data-status", "sent")

    group_id = await alice.page.locator(".chat-item").first.get_attribute("data-chat")
    assert group_id is not None
    await server.node.receipt("carol", group_id, "read", 1)
    await expect(tick).to_have_attribute("data-status", "read")
    assert alice.errors == [] and bob.errors == []


async def test_reconnects_resends_pending_and_recovers_gaps(
    browser: Browser, server: RunningServer
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    await server.node.create_chat("alice", kind="direct", members=["bob"])
    await alice.open_chat("bob")
    await bob.open_chat("alice")
    await alice.send("before the drop")
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(["before the drop"])

    # alice's network goes away: every socket is dropped and reconnecting is refused
    refused = True

    async def gate(ws: WebSocketRoute) -> None:
        if refused:
            await ws.close(code=1011, reason="network down")
        else:
            ws.connect_to_server()

    await alice.page.route_web_socket(re.compile(r".*/ws$"), gate)
    await server.kill_connections()
    await expect(alice.page.locator("#banner")).to_have_text("Reconnecting…")

    # a message written while offline waits with a clock, then goes out exactly once
    await alice.send("sent while offline")
    pending = alice.page.locator(".row.mine .tick").last
    await expect(pending).to_have_attribute("data-status", "pending")
    refused = False
    await alice.page.evaluate("window.dispatchEvent(new Event('online'))")
    await expect(alice.page.locator("#banner")).to_be_hidden(timeout=SLOW)
    await expect(pending).to_have_attribute("data-status", "read")
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(
        ["before the drop", "sent while offline"]
    )

    # a push lost on the way to bob: the next seq reveals the gap and he fetches it
    dropped: list[str] = []

    async def lossy(ws: WebSocketRoute) -> None:
        upstream = ws.connect_to_server()

        def deliver(frame: str | bytes) -> None:
            # matched by seq: the page seals the body (end-to-end encryption)
            text = frame if isinstance(frame, str) else ""
            if '"type":"message"' in text and '"seq":3,' in text and not dropped:
                dropped.append(text)
                return
            ws.send(frame)

        upstream.on_message(deliver)

    await bob.page.route_web_socket(re.compile(r".*/ws$"), lossy)
    await reconnect_everyone(server)
    await alice.send("lost in transit")
    with anyio.fail_after(10):
        while not dropped:
            await anyio.sleep(0.05)
    await alice.send("after the gap")
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(
        ["before the drop", "sent while offline", "lost in transit", "after the gap"]
    )
    for tick in await alice.page.locator(".row.mine .tick").all():
        await expect(tick).to_have_attribute("data-status", "read")
    assert alice.errors == [] and bob.errors == []


async def reconnect_everyone(server: RunningServer, users: int = 2) -> None:
    """Drop every connection and wait until each user has a new one open."""
    before = set(server.chat.connections)
    await server.kill_connections()
    with anyio.fail_after(SLOW / 1000):
        while True:
            fresh = [c for c in server.chat.connections if c not in before and c.conn is not None]
            if len(fresh) >= users:
                return
            await anyio.sleep(0.05)
