"""End-to-end encryption in the page: two browsers exchange sealed messages (WebCrypto
X25519), the Python SDK opens what a page sealed and the page what the SDK sealed, and
the server's store holds no plaintext."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.async_api import Browser, Dialog, expect

from chatcore.client import MessageReceived
from chatcore.e2ee import decode_envelope
from tests.browser.test_browser_chat import sign_in
from tests.client.harness import device, wait_until
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


async def test_two_pages_exchange_sealed_messages(
    browser: Browser, server: RunningServer, tmp_path: Path
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    secret = f"the vault code is {uuid.uuid4().hex[:8]}"

    await alice.page.get_by_role("button", name="New chat").click()
    await alice.page.get_by_label("Username").fill("bob")
    await alice.page.get_by_role("button", name="Start chat").click()
    await expect(alice.page.locator(".conv-title")).to_have_text("bob")
    await alice.send(secret)
    # alice sees her own message opened, with the lock; it reaches "sent" or beyond
    await expect(alice.page.locator(".row.mine .body")).to_have_text(secret)
    await expect(alice.page.locator(".row.mine .e2ee")).to_have_count(1)
    await expect(alice.page.locator(".row.mine .tick")).not_to_have_attribute(
        "data-status", "pending"
    )

    await bob.open_chat("alice")
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(secret)
    await expect(bob.page.locator(".row.theirs .e2ee")).to_have_count(1)
    await bob.send("got it 🔐")
    await expect(alice.page.locator(".row.theirs .body")).to_have_text("got it 🔐")

    # alice edits her sealed message: the prompt shows the opened text, the edit is sealed
    async def edit(dialog: Dialog) -> None:
        assert dialog.default_value == secret
        await dialog.accept(secret + " (changed)")

    alice.page.once("dialog", edit)
    mine = alice.page.locator(".row.mine").first
    await mine.hover()
    await mine.get_by_role("button", name="Edit").click()
    await expect(bob.page.locator(".row.theirs .body")).to_have_text(secret + " (changed)")

    chat_id = await alice.page.locator(".chat-item").first.get_attribute("data-chat")
    assert chat_id is not None
    await server.node.settled()
    stored = (await server.node.history("alice", chat_id)).messages
    assert [(m.kind, m.encrypted) for m in stored] == [
        ("text", True),
        ("text", True),
        ("edit", True),
    ]
    for m in stored:
        assert secret not in m.body and "got it" not in m.body
        assert {(k.user, k.device[:4]) for k in decode_envelope(m.body).keys} == {
            ("alice", "web-"),
            ("bob", "web-"),
        }

    # The Python SDK interoperates: a device of bob with a keyring joins the chat's keys,
    # opens what it gets from alice's page, and alice's page opens what it seals. (alice's
    # page kept the chat's keys since its first seal: the keys.changed push of py's
    # publish is what makes it seal for py.)
    async with device(server.ws_url, server.token("bob"), "py", keyring=tmp_path / "py") as py:
        await alice.send("hello python")
        await wait_until(
            lambda: any(e.text == "hello python" for e in py.of_type(MessageReceived)),
            what="the SDK to open the page's message",
        )
        await py.client.send(chat_id, "hello page", encrypted=True)
    await expect(alice.page.locator(".row.theirs .body").last).to_have_text("hello page")
    await expect(bob.page.locator(".row.theirs .body").last).to_have_text("hello python")
    assert not alice.errors and not bob.errors


async def test_a_member_without_a_key_gets_clear_text(
    browser: Browser, server: RunningServer
) -> None:
    alice = await sign_in(browser, server, "alice")
    chat = await server.node.create_chat("alice", kind="direct", members=["carol"])
    await alice.open_chat("carol")
    await alice.send("carol has no key yet")
    await expect(alice.page.locator(".row.mine .tick")).not_to_have_attribute(
        "data-status", "pending"
    )
    await expect(alice.page.locator(".row.mine .e2ee")).to_have_count(0)
    await server.node.settled()
    (stored,) = (await server.node.history("alice", chat.chat_id)).messages
    assert not stored.encrypted and stored.body == "carol has no key yet"
