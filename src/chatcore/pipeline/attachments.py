"""What a message's attachment must be: a blob its sender uploaded, as it was uploaded.

Pure: the attachment a client sent and the sender's :class:`~chatcore.uploads.Upload`
record of its blob (None if the sender never uploaded it) in, the attachment to store
or an error out. A message never carries a URL of the client's choosing: the server
signs download links when it sends the message to the chat's members.

Kinds: an ``image`` message needs an image upload, a ``video`` a video, a ``file``
a file or audio upload; a ``text`` message carries no attachment.
"""

from __future__ import annotations

from chatcore.errors import BlobNotFound, InvalidRequest
from chatcore.model import Attachment, MessageKind
from chatcore.uploads import Upload
from chatcore.uploads._rules import is_blob_id

__all__ = ["ACCEPTED_UPLOADS", "attached_blobs", "check_attachment", "requested_blob"]

ACCEPTED_UPLOADS: dict[MessageKind, frozenset[str]] = {
    "image": frozenset({"image"}),
    "video": frozenset({"video"}),
    "file": frozenset({"file", "audio"}),
}
"""Per message kind, the upload kinds its attachment may be."""


def requested_blob(kind: MessageKind, attachment: Attachment | None) -> str | None:
    """The blob id the attachment names, after the checks that need no lookup.

    Raises ``InvalidRequest`` for an attachment on a text message, a client URL, or a
    missing or malformed blob id; a media message without an attachment.
    """
    if attachment is None:
        if kind != "text":
            raise InvalidRequest(f"a {kind} message needs an attachment")
        return None
    if kind == "text":
        raise InvalidRequest("a text message carries no attachment (send an image, video or file)")
    if attachment.url:
        raise InvalidRequest(
            "an attachment refers to an uploaded blob by `blob` (POST /media); "
            "the server makes its `url`, a client may not give one"
        )
    if not is_blob_id(attachment.blob):
        raise InvalidRequest(f"not a blob id (64 lowercase hex digits): {attachment.blob!r:.80}")
    return attachment.blob


def check_attachment(
    user: str, kind: MessageKind, attachment: Attachment, upload: Upload | None
) -> Attachment:
    """The attachment to store, if ``upload`` (``user``'s record of its blob) allows it.

    Raises ``BlobNotFound`` (a ``NotFound``) when ``user`` never uploaded the blob
    (an unknown id and another user's blob look the same: nothing tells whether it
    exists), and
    ``InvalidRequest`` when the message kind, ``size``, ``mime`` or ``thumbnail``
    differ from the upload.
    """
    if upload is None or upload.user != user or upload.blob != attachment.blob:
        raise BlobNotFound(f"no blob {attachment.blob} uploaded by {user!r}")
    if upload.kind not in ACCEPTED_UPLOADS[kind]:
        raise InvalidRequest(f"a {kind} message cannot carry a {upload.kind} upload")
    if attachment.size != upload.size or attachment.mime != upload.mime:
        raise InvalidRequest(
            f"the attachment says {attachment.size} bytes of {attachment.mime!r}; "
            f"the upload is {upload.size} bytes of {upload.mime!r}"
        )
    if attachment.thumbnail is not None and attachment.thumbnail != upload.thumbnail:
        raise InvalidRequest("the attachment's thumbnail is not the one made for its upload")
    return Attachment(
        url="",
        name=attachment.name,
        size=upload.size,
        mime=upload.mime,
        blob=upload.blob,
        thumbnail=upload.thumbnail,
    )


def attached_blobs(attachment: Attachment | None) -> list[str]:
    """The blobs a stored attachment refers to (its blob and thumbnail)."""
    if attachment is None or not attachment.blob:
        return []
    return [attachment.blob] + ([attachment.thumbnail] if attachment.thumbnail else [])
