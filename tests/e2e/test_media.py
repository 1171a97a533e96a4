"""Media end to end over HTTP: upload, send, a member downloads, everyone else is refused.

On the embedded backends (filesystem blobs, SQLite ledger) and on the production ones
(S3 on S3Proxy, Redis ledger, Kafka, Cassandra).
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from chatcore.errors import BlobTooLarge, InvalidRequest, NotFound, Unauthorized
from chatcore.media import KindRule, MediaKind, MediaRules
from chatcore.protocol import AttachmentView, Message
from chatcore.server.media import MediaSettings
from tests.client.harness import device
from tests.e2e.conftest import RunningServer, embedded_settings, production_settings, running

pytestmark = pytest.mark.anyio

SMALL = MediaRules({MediaKind.FILE: KindRule(frozenset({"application/pdf"}), 4096)})


def png(width: int = 640, height: int = 480) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(params=["embedded", pytest.param("production", marks=pytest.mark.services)])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A server with small file limits (4 KiB PDFs) on embedded or production backends."""
    if request.param == "embedded":
        settings = embedded_settings(tmp_path)
        settings.media = MediaSettings(rules=SMALL)
        async with running(settings) as srv:
            yield srv
        return
    async with production_settings() as settings:
        settings.media = MediaSettings(rules=SMALL)
        async with running(settings) as srv:
            yield srv


async def post(
    server: RunningServer, data: bytes, *, user: str = "alice", **params: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        return await http.post(
            "/media",
            content=data,
            params=params,
            headers={"Authorization": f"Bearer {server.token(user)}"},
        )


async def get(server: RunningServer, url: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        return await http.get(url)


async def blob_ids(server: RunningServer) -> set[str]:
    blobs = server.node.backends.blobs
    assert blobs is not None
    return {b async for b in blobs.ids()}


async def test_an_image_goes_from_alice_to_bob_with_its_thumbnail(server: RunningServer) -> None:
    photo = png()
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        up = await alice.client.upload(photo, name="red.png")
        assert (up.kind, up.size, up.mime, up.message_kind) == (
            "image",
            len(photo),
            "image/png",
            "image",
        )
        assert up.thumbnail is not None
        await alice.client.send(chat, "look", kind="image", attachment=up.attachment())
        await bob.wait_for_seq(chat, 1)
        (message,) = bob.messages[chat]
        a = message.attachment
        assert a is not None
        assert (a.blob, a.thumbnail, a.name, a.mime) == (
            up.blob,
            up.thumbnail,
            "red.png",
            "image/png",
        )
        assert a.url is not None
        assert a.thumbnail_url is not None
        answer = await get(server, a.url)
        assert answer.status_code == 200
        assert answer.content == photo
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"] == "inline"
        thumb = await get(server, a.thumbnail_url)
        assert thumb.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(thumb.content)) as small:
            assert max(small.size) == 320
        assert await bob.client.download(message) == photo
        assert await bob.client.download(message, thumbnail=True) == thumb.content
        # history carries freshly signed links too
        await server.node.settled()
        (stored,) = [m async for m in bob.client.history(chat, after=0)]
        assert stored.attachment is not None
        assert stored.attachment.url is not None
        assert (await get(server, stored.attachment.url)).content == photo


async def test_a_file_is_offered_as_a_download(server: RunningServer) -> None:
    doc = b"%PDF-1.4 tiny"
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        await alice.client.send_media(chat, doc, name="doc.pdf")
        await alice.wait_for_seq(chat, 1)
        (message,) = alice.messages[chat]
        assert message.kind == "file"
        assert message.attachment is not None
        assert message.attachment.url is not None
        answer = await get(server, message.attachment.url)
        assert answer.content == doc
        assert answer.headers["content-disposition"] == "attachment"
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_forged_expired_and_bare_urls_are_refused(server: RunningServer) -> None:
    up = (await post(server, b"%PDF-1.4 secret")).json()
    signer = server.chat.media_links.signer
    good = signer.sign(up["blob"], now_s=2_000_000_000)
    expired = signer.sign(up["blob"], now_s=1_000_000_000, ttl_s=1)
    other = signer.sign("ab" * 32, now_s=2_000_000_000)
    for query in (
        "",
        f"expires={good.expires}&sig={'0' * 64}",
        expired.query(),
        other.query(),
        f"expires={good.expires + 1}&sig={good.sig}",
    ):
        answer = await get(server, f"/media/{up['blob']}?{query}")
        assert answer.status_code == 403, query
        assert answer.json()["code"] == "unauthorized"
    assert (await get(server, f"/media/{up['blob']}?{good.query()}")).status_code == 200
    bad_id = await get(server, "/media/..%2F..%2Fetc%2Fpasswd?expires=1&sig=x")
    assert bad_id.status_code in (400, 404)


async def test_only_members_get_links(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("mallory")) as mallory,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        up = await alice.client.upload(b"%PDF-1.4 for bob", name="b.pdf")
        await alice.client.send(chat, kind="file", attachment=up.attachment())
        await alice.wait_for_seq(chat, 1)
        with pytest.raises(Exception, match="member"):
            [m async for m in mallory.client.history(chat, after=0)]
        async with httpx.AsyncClient(base_url=server.http_url) as http:
            link = await http.get(
                f"/media/{up.blob}/link",
                params={"chat": chat, "seq": "1"},
                headers={"Authorization": f"Bearer {server.token('mallory')}"},
            )
            assert link.status_code == 403
            assert link.json()["code"] == "not_member"
            fresh = await http.get(
                f"/media/{up.blob}/link",
                params={"chat": chat, "seq": "1"},
                headers={"Authorization": f"Bearer {server.token('bob')}"},
            )
            assert fresh.status_code == 200
            assert (await http.get(fresh.json()["url"])).content == b"%PDF-1.4 for bob"


async def test_an_expired_link_in_a_message_is_renewed_by_the_sdk(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        up = await alice.client.upload(b"%PDF-1.4 renewed", name="r.pdf")
        await alice.client.send(chat, kind="file", attachment=up.attachment())
        await alice.wait_for_seq(chat, 1)
        (message,) = alice.messages[chat]
        assert message.attachment is not None
        stale = server.chat.media_links.signer.sign(up.blob, now_s=1_000_000_000, ttl_s=1)
        old = Message(
            **{
                **{f: getattr(message, f) for f in message.__struct_fields__},
                "attachment": AttachmentView(
                    **{
                        **{
                            f: getattr(message.attachment, f)
                            for f in AttachmentView.__struct_fields__
                        },
                        "url": f"/media/{up.blob}?{stale.query()}",
                    }
                ),
            }
        )
        with pytest.raises(Unauthorized):
            await alice.client.download(old.attachment)  # type: ignore[arg-type]
        assert await alice.client.download(old) == b"%PDF-1.4 renewed"


async def test_bad_uploads_get_clear_errors_and_store_nothing(server: RunningServer) -> None:
    before = await blob_ids(server)
    too_big = b"%PDF-1.4 " + b"x" * 5000
    answer = await post(server, too_big, kind="file")
    assert answer.status_code == 413
    assert answer.json()["code"] == "too_large"
    answer = await post(server, b"MZ\x90\x00 an executable", kind="file")
    assert answer.status_code == 400
    assert "application/x-msdownload" in answer.json()["message"]
    answer = await post(server, b"plain text is not a picture", kind="image")
    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid"
    answer = await post(server, b"%PDF-1.4", kind="x/evil")
    assert answer.status_code == 400
    answer = await post(server, b"")
    assert answer.status_code == 400
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        no_token = await http.post("/media", content=b"%PDF-1.4")
        assert no_token.status_code == 401
        bad_token = await http.post(
            "/media", content=b"%PDF-1.4", headers={"Authorization": "Bearer nope"}
        )
        assert bad_token.status_code == 401
    assert await blob_ids(server) == before
    async with device(server.ws_url, server.token("alice")) as alice:
        with pytest.raises(BlobTooLarge):
            await alice.client.upload(too_big, kind="file")
        with pytest.raises(InvalidRequest):
            await alice.client.upload(b"not an image", kind="image")
    assert await blob_ids(server) == before


async def test_bad_attachments_are_refused_and_nothing_is_sent(server: RunningServer) -> None:
    async with (
        device(server.ws_url, server.token("alice")) as alice,
        device(server.ws_url, server.token("bob")) as bob,
    ):
        chat = (await alice.client.create_direct("bob")).chat
        bobs = await bob.client.upload(b"%PDF-1.4 bob's", name="b.pdf")
        mine = await alice.client.upload(b"%PDF-1.4 alice's", name="a.pdf")
        evil = AttachmentView(url="file:///etc/passwd", name="x", size=50 * 2**30, mime="x/evil")
        cases: list[tuple[AttachmentView, type[Exception]]] = [
            (bobs.attachment(), NotFound),  # another user's blob
            (AttachmentView(blob="cd" * 32, name="x", size=1, mime="application/pdf"), NotFound),
            (evil, InvalidRequest),
            (
                AttachmentView(
                    blob=mine.blob, url="https://evil.example/", name="a", size=mine.size,
                    mime=mine.mime,
                ),
                InvalidRequest,
            ),
            (
                AttachmentView(blob=mine.blob, name="a", size=mine.size + 1, mime=mine.mime),
                InvalidRequest,
            ),
        ]  # fmt: skip
        for attachment, error in cases:
            with pytest.raises(error):
                await alice.client.send(chat, kind="file", attachment=attachment)
        with pytest.raises(InvalidRequest):
            await alice.client.send(chat, kind="image", attachment=mine.attachment())
        await alice.client.send(chat, "only this one")
        await bob.wait_for_seq(chat, 1)
        await server.node.settled()
        assert [m.body for m in bob.messages[chat]] == ["only this one"]


async def test_the_sweep_keeps_sent_blobs_and_deletes_the_rest(server: RunningServer) -> None:
    async with device(server.ws_url, server.token("alice")) as alice:
        chat = (await alice.client.create_direct("bob")).chat
        sent = await alice.client.upload(png(64, 64), name="sent.png")
        unsent = await alice.client.upload(b"%PDF-1.4 never sent", name="u.pdf")
        await alice.client.send(chat, kind="image", attachment=sent.attachment())
        await alice.wait_for_seq(chat, 1)
    server.chat.media.settings.sweep_grace_ms = 0
    deleted = await server.chat.media.sweep()
    assert unsent.blob in deleted
    ids = await blob_ids(server)
    assert {sent.blob, sent.thumbnail} <= ids
    assert unsent.blob not in ids
    answer = await post(server, b"%PDF-1.4", kind="file")
    assert answer.status_code == 201
    assert json.loads(answer.text)["blob"] in await blob_ids(server)


async def test_the_media_example_shares_a_photo(server: RunningServer, tmp_path: Path) -> None:
    from examples.media_share import share

    photo = tmp_path / "photo.png"
    photo.write_bytes(png(100, 80))
    data = await share(server.ws_url, server.token("alice"), server.token("bob"), photo)
    assert data == photo.read_bytes()
