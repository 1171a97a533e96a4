"""A message's attachment is a blob its sender uploaded: the pure rules and the Router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, NotFound
from chatcore.model import Attachment
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.attachments import attached_blobs, check_attachment, requested_blob
from chatcore.uploads import Upload

pytestmark = pytest.mark.anyio

BLOB, THUMB, OTHER = "a1" * 32, "b2" * 32, "c3" * 32


def upload(user: str = "alice", blob: str = BLOB, **changes: object) -> Upload:
    fields: dict[str, object] = {
        "blob": blob,
        "user": user,
        "kind": "image",
        "size": 10,
        "mime": "image/png",
        "uploaded_ms": 1,
        "thumbnail": THUMB,
    }
    return Upload(**{**fields, **changes})  # type: ignore[arg-type]


def attachment(**changes: object) -> Attachment:
    fields: dict[str, object] = {
        "url": "",
        "name": "a.png",
        "size": 10,
        "mime": "image/png",
        "blob": BLOB,
    }
    return Attachment(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_stored_attachment_takes_the_upload_s_facts() -> None:
    stored = check_attachment("alice", "image", attachment(), upload())
    assert stored == attachment(thumbnail=THUMB)
    assert attached_blobs(stored) == [BLOB, THUMB]
    assert attached_blobs(None) == []
    assert attached_blobs(Attachment("https://old.example/x", "x", 1, "image/png")) == []


@pytest.mark.parametrize(
    ("kind", "sent", "match"),
    [
        ("text", attachment(), "text message carries no attachment"),
        ("image", None, "needs an attachment"),
        ("image", attachment(url="file:///etc/passwd"), "may not give one"),
        ("image", attachment(blob=""), "not a blob id"),
        ("image", attachment(blob="../../etc/passwd"), "not a blob id"),
    ],
)
def test_what_needs_no_lookup_is_refused_first(
    kind: str, sent: Attachment | None, match: str
) -> None:
    with pytest.raises(InvalidRequest, match=match):
        requested_blob(kind, sent)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "sent", "record", "error", "match"),
    [
        ("image", attachment(), None, NotFound, "no blob"),
        ("image", attachment(), upload(user="bob"), NotFound, "no blob"),
        ("video", attachment(), upload(), InvalidRequest, "cannot carry a image"),
        ("file", attachment(), upload(), InvalidRequest, "cannot carry a image"),
        ("image", attachment(size=11), upload(), InvalidRequest, "the upload is 10 bytes"),
        ("image", attachment(mime="x/evil"), upload(), InvalidRequest, "image/png"),
        ("image", attachment(thumbnail=OTHER), upload(), InvalidRequest, "thumbnail"),
    ],
)
def test_an_attachment_that_differs_from_its_upload_is_refused(
    kind: str, sent: Attachment, record: Upload | None, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check_attachment("alice", kind, sent, record)  # type: ignore[arg-type]


def test_a_file_message_takes_file_and_audio_uploads() -> None:
    for upload_kind in ("file", "audio"):
        record = upload(kind=upload_kind, thumbnail=None)
        assert check_attachment("alice", "file", attachment(), record).blob == BLOB


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    if request.param == "memory":
        backends = Backends.in_memory()
    else:
        backends = Backends.embedded(tmp_path / "data")
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


async def test_the_router_refuses_other_users_blobs_and_appends_nothing(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob", "carol"])
    await node.backends.uploads.record(upload(user="bob"))
    log = node.backends.log
    before = await log.end_offsets(node.topics.submitted)
    bad = [
        attachment(),  # uploaded by bob, not alice
        attachment(blob=OTHER),  # uploaded by nobody
        attachment(url="https://evil.example/x.png"),
        attachment(url="file:///etc/passwd", mime="x/evil", size=50 * 2**30),
    ]
    for i, sent in enumerate(bad):
        with pytest.raises((NotFound, InvalidRequest)):
            await node.send(
                "alice", chat.chat_id, client_msg_id=f"m{i}", kind="image", attachment=sent
            )
    assert await log.end_offsets(node.topics.submitted) == before
    assert await node.backends.uploads.referenced([BLOB, OTHER, THUMB]) == set()


async def test_the_router_stores_the_upload_s_attachment_and_marks_it(node: ChatNode) -> None:
    chat = await node.create_chat("bob", kind="direct", members=["alice"])
    await node.backends.uploads.record(upload(user="bob"))
    await node.send(
        "bob", chat.chat_id, client_msg_id="m", kind="image", attachment=attachment(name="p.png")
    )
    await node.settled()
    (stored,) = (await node.history("alice", chat.chat_id)).messages
    assert stored.attachment == attachment(name="p.png", thumbnail=THUMB)
    assert await node.backends.uploads.referenced([BLOB, THUMB, OTHER]) == {BLOB, THUMB}
