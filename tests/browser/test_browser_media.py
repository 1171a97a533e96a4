"""Attachments in the browser page: an image inline with its thumbnail, a file to
download, a refused upload, and an expired link renewed, in headless Chromium."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, expect

from tests.browser.test_browser_chat import Client, sign_in
from tests.e2e.conftest import RunningServer

pytestmark = pytest.mark.anyio


async def attach(client: Client, path: Path) -> None:
    await client.page.locator("#attach-input").set_input_files(str(path))


async def loaded(client: Client) -> None:
    """Wait until the picture in the other side's row has loaded: a 320 px thumbnail."""
    await client.page.wait_for_function(
        """() => {
          const img = document.querySelector(".row.theirs img.media");
          return img && img.complete && img.naturalWidth === 320;
        }"""
    )


async def test_an_attached_image_shows_inline_on_the_other_side(
    browser: Browser, server: RunningServer, tmp_path: Path
) -> None:
    photo = tmp_path / "sunset.png"
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (250, 120, 40)).save(out, format="PNG")
    photo.write_bytes(out.getvalue())
    doc = tmp_path / "notes.pdf"
    doc.write_bytes(b"%PDF-1.4 meeting notes")
    program = tmp_path / "setup.exe"
    program.write_bytes(b"MZ\x90\x00" + b"\x00" * 64)

    alice = await sign_in(browser, server, "alice")
    bob = await sign_in(browser, server, "bob")
    await alice.page.get_by_role("button", name="New chat").click()
    await alice.page.get_by_label("Username").fill("bob")
    await alice.page.get_by_role("button", name="Start chat").click()
    await expect(alice.page.locator(".conv-title")).to_have_text("bob")

    # alice types a caption and attaches the photo
    await alice.page.locator("#composer-input").fill("Look at this")
    await attach(alice, photo)
    await bob.open_chat("alice")
    image = bob.page.locator(".row.theirs img.media")
    await expect(image).to_have_count(1)
    await expect(bob.page.locator(".row.theirs .body")).to_have_text("Look at this")
    await expect(image).to_have_attribute("src", re.compile(r"^/media/[0-9a-f]{64}\?expires="))
    await loaded(bob)
    full = bob.page.locator(".row.theirs a.media-link")
    href = await full.get_attribute("href")
    assert href is not None
    assert href != await image.get_attribute("src"), "the inline picture is the thumbnail"
    answer = await bob.page.request.get(server.http_url + href)
    assert answer.ok
    assert await answer.body() == photo.read_bytes()

    # a PDF is offered as a download
    await attach(alice, doc)
    link = bob.page.locator(".row.theirs a.file")
    await expect(link).to_contain_text("notes.pdf")
    await expect(link).to_have_attribute("download", "notes.pdf")
    async with bob.page.expect_download() as waiting:
        await link.click()
    download = await waiting.value
    saved = tmp_path / "downloaded.pdf"
    await download.save_as(saved)
    assert saved.read_bytes() == doc.read_bytes()

    # an executable is refused by the server: alice's message is marked not sent
    await attach(alice, program)
    failed = alice.page.locator(".row.mine .tick[data-status=failed]")
    await expect(failed).to_have_count(1)
    await expect(alice.page.locator(".row.mine[data-retry]")).to_have_attribute(
        "title", re.compile("application/x-msdownload")
    )

    # an expired link: the page asks for fresh ones and the picture loads again
    async with bob.page.expect_response(re.compile(r"/media/[0-9a-f]{64}/link\?")) as renewal:
        await bob.page.evaluate(
            """() => {
              const page = window.chatcore;
              const chat = page.store.active;
              const m = chat.messages.get(1);
              const stale = `/media/${m.attachment.blob}?expires=1&sig=${"0".repeat(64)}`;
              m.attachment = { ...m.attachment, url: stale, thumbnail_url: stale };
              chat.version++;
              page.render();
            }"""
        )
    assert (await renewal.value).ok
    await bob.page.wait_for_function(
        """() => {
          const img = document.querySelector(".row.theirs img.media");
          return img && !img.src.includes("expires=1&") && img.complete && img.naturalWidth === 320;
        }"""
    )
    assert "expires=1&" not in (await image.get_attribute("src") or "")

    chat_id = await alice.page.locator(".chat-item").first.get_attribute("data-chat")
    assert chat_id is not None
    await server.node.settled()
    stored = (await server.node.history("bob", chat_id)).messages
    assert [m.kind for m in stored] == ["image", "file"]
    assert alice.errors == []
    assert bob.errors == []
