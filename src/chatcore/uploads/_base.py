"""The ``UploadLedger`` port: which user uploaded which blob, and what the blob is.

The media upload endpoint records an :class:`Upload` for the user who sent the
bytes; the Router reads it when a message refers to a blob (a blob may be attached
only by a user who uploaded it, see :mod:`chatcore.pipeline.attachments`). The
retention sweep forgets a blob it deleted. Blob ids are content addresses, so two
users who upload the same bytes get one blob and two records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec

from chatcore._resource import AsyncResource

__all__ = ["Upload", "UploadKind", "UploadLedger"]

UploadKind = Literal["image", "video", "audio", "file"]


class Upload(msgspec.Struct, frozen=True, kw_only=True):
    """One user's upload of one blob, as the upload endpoint checked it."""

    blob: str
    """The blob's id (SHA-256 of its bytes, 64 lowercase hex digits)."""
    user: str
    """Who uploaded it."""
    kind: UploadKind
    """The kind the upload passed the rules of (its type and size limit)."""
    size: int
    """Bytes."""
    mime: str
    """Sniffed from the bytes."""
    uploaded_ms: int
    """When (ms since the epoch); a second upload of the same bytes moves it."""
    thumbnail: str | None = None
    """The id of the thumbnail blob made for an image (None: none)."""


class UploadLedger(AsyncResource, Protocol):
    async def record(self, upload: Upload) -> None:
        """Remember ``upload`` (replacing the same user's earlier record of the blob).

        Raises ``InvalidRequest`` for a blob id that is not 64 lowercase hex digits, an
        empty user or a size below 1; ``Unavailable`` if the backend fails.
        """
        ...

    async def get(self, user: str, blob: str) -> Upload | None:
        """``user``'s record of ``blob``; None if that user never uploaded it (or it was
        forgotten). Any string is a valid question: a bad id is simply unknown."""
        ...

    async def forget(self, blob: str) -> int:
        """Drop every user's record of ``blob`` (it was deleted); how many there were."""
        ...

    async def reference(self, blobs: Sequence[str]) -> None:
        """Mark ``blobs`` as referenced by a message (for good: messages are kept).

        The Router marks a message's blob and thumbnail before it appends the message,
        so the retention sweep never deletes a blob a durable message refers to.
        """
        ...

    async def referenced(self, blobs: Sequence[str]) -> set[str]:
        """Those of ``blobs`` a message referenced."""
        ...
