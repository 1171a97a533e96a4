"""The ``BlobStore`` port: content-addressed media bytes, streamed in and out.

A blob's id is the SHA-256 of its bytes (64 lowercase hex digits): putting the same
bytes twice gives one blob. Its MIME type is sniffed from the bytes by the store
(:func:`chatcore.media.sniff_mime`); nothing a client claims is kept.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import msgspec

from chatcore._resource import AsyncResource

__all__ = ["DEFAULT_CHUNK_BYTES", "BlobInfo", "BlobStore", "PresignedUrls"]

DEFAULT_CHUNK_BYTES = 64 * 1024
"""The size of the chunks :meth:`BlobStore.open` yields (the last one may be shorter)."""


class BlobInfo(msgspec.Struct, frozen=True):
    """What a store knows of one blob."""

    id: str
    """SHA-256 of the bytes, 64 lowercase hex digits."""
    size: int
    """Length in bytes (at least 1)."""
    mime: str
    """Sniffed from the bytes; ``application/octet-stream`` when not recognised."""
    uploaded_ms: int
    """When these bytes were last put (a second put of the same bytes moves it), ms since
    the epoch; the retention rule's grace period counts from it."""


class BlobStore(AsyncResource, Protocol):
    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> BlobInfo:
        """Store the bytes of ``chunks`` as they arrive; the whole upload is never in memory
        (except in the memory backend).

        Idempotent: the same bytes give the same blob (its ``uploaded_ms`` moves).
        Raises :class:`~chatcore.errors.BlobTooLarge` as soon as more than ``max_bytes``
        arrived and :class:`~chatcore.errors.InvalidRequest` for an empty upload, a chunk
        that is not bytes or a ``max_bytes`` below 1; a failed or cancelled put leaves
        nothing behind. :class:`~chatcore.errors.Unavailable` if the backend fails.
        """
        ...

    async def stat(self, blob_id: str) -> BlobInfo:
        """What is known of a blob; ``NotFound`` if absent, ``InvalidRequest`` for a bad id."""
        ...

    def open(
        self, blob_id: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """The blob's bytes in chunks of ``chunk_bytes``, read as they are iterated.

        Entering raises ``NotFound`` if absent, ``InvalidRequest`` for a bad id or a
        ``chunk_bytes`` below 1.
        """
        ...

    async def delete(self, blob_id: str) -> bool:
        """Remove a blob; False if there was none. ``InvalidRequest`` for a bad id."""
        ...

    def ids(self) -> AsyncIterator[str]:
        """Every blob's id, in no set order (for cleanup); blobs put meanwhile may be missed."""
        ...


@runtime_checkable
class PresignedUrls(Protocol):
    """An optional capability: a backend that serves blobs itself by signed URL (S3)."""

    async def presigned_url(self, blob_id: str, *, expires_s: int) -> str:
        """A URL that GETs the blob without credentials until ``expires_s`` seconds from now.

        Raises ``NotFound`` if absent, ``InvalidRequest`` for a bad id or an ``expires_s``
        outside 1 s .. 7 days.
        """
        ...
