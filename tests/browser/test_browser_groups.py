"""Group roles in the browser page, in headless Chromium: the group info panel (members
with their role badges; add, remove, promote, demote, history_visible for admins;
leave for everyone), driven through the page and seen live on the other pages."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import anyio
import pytest
from playwright.async_api import Browser, Locator, Page, WebSocketRoute, expect

from tests.browser.test_browser_chat import Client, reconnect_everyone, sign_in
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


async def open_panel(client: Client, title: str) -> None:
    """Open the group `title` and its info panel."""
    await client.open_chat(title)
    await client.page.get_by_role("button", name="Group info", exact=True).click()
    await expect(client.page.locator("#group-panel")).to_be_visible()


def member(page: Page, user: str) -> Locator:
    """The row of `user` in the open group info panel."""
    return page.locator(f'.member[data-member="{user}"]')


async def create_group(
    client: Client, title: str, members: str, *, history_visible: bool = True
) -> str:
    """Create a group through the "New group" dialog; returns its chat id."""
    page = client.page
    await page.get_by_role("button", name="New group").click()
    await page.get_by_label("Group name").fill(title)
    await page.get_by_label("Members", exact=True).fill(members)
    await page.get_by_role("checkbox", name="Show earlier messages").set_checked(history_visible)
    await page.get_by_role("button", name="Create group").click()
    await expect(page.locator(".conv-title")).to_have_text(title)
    chat_id = await page.locator(".chat-item", has_text=title).get_attribute("data-chat")
    assert chat_id is not None
    return chat_id


async def add_member(client: Client, user: str) -> None:
    await client.page.get_by_label("Name to add").fill(user)
    await client.page.get_by_role("button", name="Add", exact=True).click()
    await expect(member(client.page, user)).to_be_visible()


async def test_admin_adds_promotes_and_demotes_and_the_others_see_it_live(
    browser: Browser, server: RunningServer, tmp_path: Path
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    carol = await sign_in(browser, server, "carol")
    chat_id = await create_group(alice, "Trip", "bob")
    await alice.send("Flights are booked ✈️")
    await alice.page.get_by_role("button", name="Group info", exact=True).click()
    panel = alice.page.locator("#group-panel")
    await expect(panel.locator(".panel-count")).to_have_text("Group · 2 members")
    await expect(member(alice.page, "alice").locator(".role-badge")).to_have_text("creator")
    await expect(member(alice.page, "bob").locator(".role-badge")).to_have_count(0)

    # alice adds carol by name: the chat turns up in carol's list without a reload
    await add_member(alice, "carol")
    await expect(panel.locator(".panel-count")).to_have_text("Group · 3 members")
    await open_panel(carol, "Trip")
    await expect(carol.page.locator(".member")).to_have_count(3)

    # carol is a plain member: no add form, no remove/promote buttons, the option is locked
    assert await carol.page.locator("#add-member").is_hidden()
    await expect(carol.page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    await expect(carol.page.get_by_role("button", name=re.compile("^Make"))).to_have_count(0)
    await expect(carol.page.get_by_role("switch")).to_be_disabled()
    await expect(carol.page.locator("#history-hint")).to_have_text("Only admins can change this.")

    # alice promotes bob: carol's open panel shows his badge at once, bob gets the controls
    await alice.page.get_by_role("button", name="Make bob admin").click()
    await expect(member(carol.page, "bob").locator(".role-badge")).to_have_text("admin")
    await expect(member(alice.page, "bob").locator(".role-badge")).to_have_text("admin")
    await open_panel(bob, "Trip")
    await expect(bob.page.get_by_role("button", name="Remove carol")).to_be_visible()
    await expect(bob.page.get_by_role("switch")).to_be_enabled()
    # ... but not over the creator, whom no one else may remove or demote
    await expect(member(bob.page, "alice").locator(".member-action")).to_have_count(0)
    await expect(bob.page.locator(".conv-status")).to_contain_text("alice (admin)")
    await expect(bob.page.locator(".conv-status")).to_contain_text("You (admin)")

    await alice.page.locator("#composer-input").fill("")
    await screenshot(alice.page, tmp_path / "browser-groups.png")

    # alice dismisses bob as admin: his controls go, everyone's badge for him goes
    await alice.page.get_by_role("button", name="Dismiss bob as admin").click()
    await expect(member(carol.page, "bob").locator(".role-badge")).to_have_count(0)
    await expect(bob.page.get_by_role("button", name="Remove carol")).to_have_count(0)
    assert await bob.page.locator("#add-member").is_hidden()
    chat = await server.node.chat("alice", chat_id)
    assert chat.chat.admins() == ("alice",)
    assert chat.chat.members == ("alice", "bob", "carol")

    # alice removes carol (after confirming): the group leaves carol's page, bob's panel follows
    alice.page.once("dialog", lambda dialog: dialog.accept())
    await alice.page.get_by_role("button", name="Remove carol").click()
    await expect(carol.page.locator(".chat-item", has_text="Trip")).to_have_count(0)
    await expect(carol.page.locator("#group-panel")).to_be_hidden()
    await expect(member(bob.page, "carol")).to_have_count(0)
    assert (await server.node.chat("alice", chat_id)).chat.members == ("alice", "bob")
    assert alice.errors == [] and bob.errors == [] and carol.errors == []


async def test_a_refused_change_is_shown_and_changes_nothing(
    browser: Browser, server: RunningServer
) -> None:
    group = await server.node.create_chat(
        "alice", kind="group", members=["bob", "carol"], title="Ops"
    )
    await server.node.update_members("alice", group.chat_id, promote=["bob"])
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    carol = await sign_in(browser, server, "carol")

    # bob's page misses the push that demotes him, so it still offers him the controls
    lose_pushes = True

    async def lossy(ws: WebSocketRoute) -> None:
        upstream = ws.connect_to_server()

        def deliver(frame: str | bytes) -> None:
            text = frame if isinstance(frame, str) else ""
            if lose_pushes and '"type":"chat"' in text and '"id":' not in text:
                return
            ws.send(frame)

        upstream.on_message(deliver)

    await bob.page.route_web_socket(re.compile(r".*/ws$"), lossy)
    await reconnect_everyone(server, users=3)
    await open_panel(bob, "Ops")
    await open_panel(carol, "Ops")
    await expect(member(bob.page, "bob").locator(".role-badge")).to_have_text("admin")
    await open_panel(alice, "Ops")
    await alice.page.get_by_role("button", name="Dismiss bob as admin").click()
    await expect(member(carol.page, "bob").locator(".role-badge")).to_have_count(0)
    await expect(member(bob.page, "bob").locator(".role-badge")).to_have_text("admin")  # stale

    # bob tries to remove carol: the server refuses, the page says why, carol stays
    bob.page.once("dialog", lambda dialog: dialog.accept())
    await bob.page.get_by_role("button", name="Remove carol").click()
    error = bob.page.locator("#group-error")
    await expect(error).to_contain_text("Not changed: only an admin")
    await expect(error).to_have_attribute("role", "alert")
    # the page then fetches the chat list again: its view of the group is corrected
    await expect(member(bob.page, "bob").locator(".role-badge")).to_have_count(0)
    await expect(bob.page.get_by_role("button", name="Remove carol")).to_have_count(0)
    await expect(member(bob.page, "carol")).to_be_visible()
    await expect(carol.page.locator(".chat-item", has_text="Ops")).to_have_count(1)
    chat = await server.node.chat("alice", group.chat_id)
    assert chat.chat.members == ("alice", "bob", "carol")
    assert chat.chat.admins() == ("alice",)
    assert alice.errors == [] and bob.errors == [] and carol.errors == []


async def test_leaving_takes_the_group_out_of_the_leavers_list(
    browser: Browser, server: RunningServer
) -> None:
    group = await server.node.create_chat(
        "alice", kind="group", members=["bob", "carol"], title="Book club"
    )
    alice = await sign_in(browser, server, "alice")
    carol = await sign_in(browser, server, "carol")
    await open_panel(alice, "Book club")
    await open_panel(carol, "Book club")
    await expect(alice.page.locator(".member")).to_have_count(3)

    carol.page.once("dialog", lambda dialog: dialog.accept())
    await carol.page.get_by_role("button", name="Leave group").click()
    await expect(carol.page.locator(".chat-item", has_text="Book club")).to_have_count(0)
    await expect(carol.page.locator("#chat-view")).to_be_hidden()
    await expect(carol.page.locator("#group-panel")).to_be_hidden()
    # alice's open panel and header follow without a reload
    await expect(member(alice.page, "carol")).to_have_count(0)
    await expect(alice.page.locator(".panel-count")).to_have_text("Group · 2 members")
    await expect(alice.page.locator(".conv-status")).to_have_text("2 members · bob, You (admin)")
    chat = await server.node.chat("alice", group.chat_id)
    assert chat.chat.members == ("alice", "bob")
    assert alice.errors == [] and carol.errors == []


async def test_history_visible_decides_what_a_new_member_sees(
    browser: Browser, server: RunningServer
) -> None:
    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    dave = await sign_in(browser, server, "dave")
    erin = await sign_in(browser, server, "erin")
    chat_id = await create_group(alice, "Plans", "bob")
    # sent in clear from the SDK: the page seals its own sends for the members of the
    # moment, so a member added later could not open them, whatever the option says
    await server.node.send("alice", chat_id, client_msg_id="p-1", body="the old plan")
    await open_panel(bob, "Plans")
    await alice.page.get_by_role("button", name="Group info", exact=True).click()
    toggle = alice.page.get_by_role("switch", name="Show earlier messages to people added later")
    await expect(toggle).to_be_checked()

    # alice hides earlier history from new members; bob's panel follows
    await toggle.uncheck()
    await expect(bob.page.get_by_role("switch")).not_to_be_checked()
    chat = await server.node.chat("alice", chat_id)
    assert chat.chat.roles.history_visible is False

    # dave, added now, sees only what is sent after he joined (and nothing unread before)
    await add_member(alice, "dave")
    entry = dave.page.locator(".chat-item", has_text="Plans")
    await expect(entry.locator(".chat-preview")).to_have_text("No messages yet")
    await expect(entry.locator(".badge")).to_have_count(0)
    await server.node.send("alice", chat_id, client_msg_id="p-2", body="the new plan")
    await expect(entry.locator(".badge")).to_have_text("1")
    await dave.open_chat("Plans")
    await expect(dave.page.locator(".row .body")).to_have_text(["the new plan"])
    await expect(entry.locator(".badge")).to_have_count(0)

    # shown again: erin, added afterwards, sees the whole conversation
    await toggle.check()
    await expect(bob.page.get_by_role("switch")).to_be_checked()
    await add_member(alice, "erin")
    await erin.open_chat("Plans")
    await expect(erin.page.locator(".row .body")).to_have_text(["the old plan", "the new plan"])

    # the option can be set when the group is made, in the "New group" dialog
    hidden_id = await create_group(alice, "Surprise", "bob", history_visible=False)
    assert (await server.node.chat("alice", hidden_id)).chat.roles.history_visible is False
    await alice.page.get_by_role("button", name="Group info", exact=True).click()
    await expect(toggle).not_to_be_checked()
    assert all(c.errors == [] for c in (alice, bob, dave, erin))


async def screenshot(page: Page, path: Path) -> None:
    """A picture of the page; also copied to $CHATCORE_SCREENSHOT_DIR (docs/img) if set."""
    await page.screenshot(path=str(path))
    assert (await anyio.Path(path).stat()).st_size > 10_000
    if target := os.environ.get("CHATCORE_SCREENSHOT_DIR"):
        await anyio.Path(target).mkdir(parents=True, exist_ok=True)
        await anyio.to_thread.run_sync(shutil.copy, path, Path(target) / path.name)
