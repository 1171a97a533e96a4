"""Edits, deletions and reactions in the browser page, in headless Chromium: made
through the page's own buttons, seen live by the other user and after a reload."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Dialog, expect

from tests.browser.test_browser_chat import sign_in
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


async def test_edit_react_and_delete_show_on_both_pages(
    browser: Browser, server: RunningServer
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    await alice.page.get_by_role("button", name="New chat").click()
    await alice.page.get_by_label("Username").fill("bob")
    await alice.page.get_by_role("button", name="Start chat").click()
    await expect(alice.page.locator(".conv-title")).to_have_text("bob")
    await alice.send("Lunch at noon?")
    await alice.send("Bring the bok")
    await expect(alice.page.locator(".row.mine .tick")).to_have_count(2)
    await bob.open_chat("alice")
    theirs = bob.page.locator(".row.theirs")
    await expect(theirs.locator(".body")).to_have_text(["Lunch at noon?", "Bring the bok"])
    await expect(theirs.first.get_by_role("button", name="Edit")).to_have_count(0)  # not his

    # alice fixes the typo through the page's Edit button (a prompt asks for the text)
    async def edit(dialog: Dialog) -> None:
        assert dialog.default_value == "Bring the bok"
        await dialog.accept("Bring the book")

    alice.page.once("dialog", edit)
    second = alice.page.locator(".row.mine").nth(1)
    await second.hover()
    await second.get_by_role("button", name="Edit").click()
    await expect(theirs.nth(1).locator(".body")).to_have_text("Bring the book")
    await expect(theirs.nth(1).locator(".edited")).to_have_text("edited")

    # bob reacts 👍; alice sees the chip, and taking hers back leaves his
    await theirs.nth(1).hover()
    await theirs.nth(1).get_by_role("button", name="React 👍").click()
    chip = second.locator(".reaction")
    await expect(chip).to_have_text("👍 1")
    await chip.click()  # alice adds hers through the chip
    await expect(theirs.nth(1).locator(".reaction")).to_have_text("👍 2")
    await expect(chip).to_have_class("reaction mine")
    await chip.click()  # and takes it back
    await expect(theirs.nth(1).locator(".reaction")).to_have_text("👍 1")

    # alice deletes the first message for everyone (after confirming)
    alice.page.once("dialog", lambda dialog: dialog.accept())
    first = alice.page.locator(".row.mine").first
    await first.hover()
    await first.get_by_role("button", name="Delete").click()
    await expect(theirs.first.locator(".body")).to_have_text("🚫 This message was deleted")

    # the changes are not unread, and a reload shows the same state from history
    entry = bob.page.locator(".chat-item", has_text="alice")
    await expect(entry.locator(".badge")).to_have_count(0)
    await bob.page.reload()
    await bob.open_chat("alice")
    await expect(theirs.locator(".body")).to_have_text(
        ["🚫 This message was deleted", "Bring the book"]
    )
    await expect(theirs.nth(1).locator(".reaction")).to_have_text("👍 1")
    await expect(theirs.nth(1).locator(".edited")).to_have_text("edited")
    assert alice.errors == [] and bob.errors == []


async def test_group_admins_are_named_and_leaving_hands_over(
    browser: Browser, server: RunningServer
) -> None:
    group = await server.node.create_chat(
        "alice", kind="group", members=["bob", "carol"], title="Book club"
    )
    await server.node.send("alice", group.chat_id, client_msg_id="a", body="Welcome!")
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    await bob.open_chat("Book club")
    status = bob.page.locator(".conv-status")
    await expect(status).to_have_text("3 members · alice (admin), carol, You")

    # the group's only admin leaves through its info panel: bob, the longest-standing, takes over
    await alice.open_chat("Book club")
    await alice.page.get_by_role("button", name="Group info", exact=True).click()
    alice.page.once("dialog", lambda dialog: dialog.accept())
    await alice.page.get_by_role("button", name="Leave group").click()
    await expect(alice.page.locator(".chat-item", has_text="Book club")).to_have_count(0)
    await expect(status).to_have_text("2 members · carol, You (admin)")
    chat = await server.node.chat("bob", group.chat_id)
    assert chat.chat.admins() == ("bob",)
    assert alice.errors == [] and bob.errors == []
