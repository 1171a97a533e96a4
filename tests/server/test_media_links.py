"""MediaLinks: the signed links the server puts into message frames (pure, clock passed in)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from chatcore.errors import Unauthorized
from chatcore.media import UrlSigner
from chatcore.protocol import AttachmentView, Message
from chatcore.server.auth import TokenAuthority
from chatcore.server.media import MediaLinks

BLOB, THUMB = "a1" * 32, "b2" * 32
NOW_MS = 1_700_000_000_000


def message(attachment: AttachmentView | None) -> Message:
    return Message(
        chat="c", seq=1, message_id="1", sender="alice", client_msg_id="m", kind="image",
        body="", ts=0, attachment=attachment,
    )  # fmt: skip


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path, query["expires"][0], query["sig"][0]


def test_links_are_signed_for_the_blob_and_its_thumbnail_and_expire() -> None:
    signer = UrlSigner(b"k" * 32)
    links = MediaLinks(signer, ttl_s=60, prefix="/chat/media/", clock=lambda: NOW_MS)
    sent = AttachmentView(blob=BLOB, thumbnail=THUMB, name="a.png", size=3, mime="image/png")
    signed = links.message(message(sent)).attachment
    assert signed is not None
    assert signed.url is not None
    assert signed.thumbnail_url is not None
    for url, blob in ((signed.url, BLOB), (signed.thumbnail_url, THUMB)):
        path, expires, sig = parts(url)
        assert path == f"/chat/media/{blob}"
        assert int(expires) == NOW_MS // 1000 + 60
        signer.verify(blob, expires, sig, now_s=NOW_MS // 1000 + 60)
        with pytest.raises(Unauthorized):
            signer.verify(blob, expires, sig, now_s=NOW_MS // 1000 + 61)
        with pytest.raises(Unauthorized):
            signer.verify(BLOB if blob == THUMB else THUMB, expires, sig, now_s=NOW_MS // 1000)


def test_frames_without_a_blob_are_left_alone() -> None:
    links = MediaLinks(UrlSigner(b"k" * 32), clock=lambda: NOW_MS)
    plain = message(None)
    assert links.message(plain) is plain
    legacy = message(AttachmentView(url="https://old.example/a.png", name="a", size=1, mime="x"))
    assert links.message(legacy) is legacy
    no_thumb = links.message(message(AttachmentView(blob=BLOB, name="f", size=1, mime="x")))
    assert no_thumb.attachment is not None
    assert no_thumb.attachment.thumbnail_url is None


def test_the_signing_key_is_derived_from_the_token_secret() -> None:
    one = TokenAuthority("s" * 32)
    assert one.derived_key("media") == TokenAuthority("s" * 32).derived_key("media")
    assert one.derived_key("media") != TokenAuthority("t" * 32).derived_key("media")
    assert one.derived_key("media") != one.derived_key("other")
    assert len(one.derived_key("media")) == 32
