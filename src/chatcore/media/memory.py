"""A ``BlobStore`` in a dict: for tests and demos.

Its limit: every blob is held whole in this process's memory (``put`` buffers the
upload too) and is gone when the process ends; single process only.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio.lowlevel

from chatcore._clock import wall_ms
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, NotFound
from chatcore.media._base import DEFAULT_CHUNK_BYTES, BlobInfo
from chatcore.media._ingest import Ingest, check_chunk_bytes
from chatcore.media.rules import check_blob_id

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore(ClosingContext):
    """Blobs in memory (see the module's note on its limit). ``clock`` gives ms since the epoch."""

    def __init__(self, *, clock: Callable[[], int] = wall_ms) -> None:
        self._blobs: dict[str, tuple[bytes, BlobInfo]] = {}
        self._clock = clock
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("MemoryBlobStore used after aclose()")

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> BlobInfo:
        self._check_open()
        ingest = Ingest(max_bytes)
        parts = [ingest.feed(chunk) async for chunk in chunks]
        blob_id, mime = ingest.finish()
        self._check_open()
        info = BlobInfo(id=blob_id, size=ingest.size, mime=mime, uploaded_ms=self._clock())
        self._blobs[blob_id] = (b"".join(parts), info)
        return info

    def _get(self, blob_id: str) -> tuple[bytes, BlobInfo]:
        self._check_open()
        found = self._blobs.get(check_blob_id(blob_id))
        if found is None:
            raise NotFound(f"no blob {blob_id}")
        return found

    async def stat(self, blob_id: str) -> BlobInfo:
        return self._get(blob_id)[1]

    @asynccontextmanager
    async def open(
        self, blob_id: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        check_chunk_bytes(chunk_bytes)
        data = self._get(blob_id)[0]

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), chunk_bytes):
                await anyio.lowlevel.checkpoint()
                yield data[start : start + chunk_bytes]

        yield chunks()

    async def delete(self, blob_id: str) -> bool:
        self._check_open()
        return self._blobs.pop(check_blob_id(blob_id), None) is not None

    async def ids(self) -> AsyncIterator[str]:
        self._check_open()
        for blob_id in list(self._blobs):
            await anyio.lowlevel.checkpoint()
            yield blob_id

    async def aclose(self) -> None:
        """Forget every blob. Idempotent."""
        self._closed = True
        self._blobs.clear()
