"""What every ``BlobStore`` backend shares while a blob streams in: hash, count, sniff."""

from __future__ import annotations

import hashlib

from chatcore.errors import BlobTooLarge, InvalidRequest
from chatcore.media.rules import SNIFF_BYTES, sniff_mime

__all__ = ["Ingest", "check_chunk_bytes"]


def check_chunk_bytes(chunk_bytes: int) -> None:
    """``InvalidRequest`` unless ``chunk_bytes`` (of ``BlobStore.open``) is at least 1."""
    if isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise InvalidRequest(f"chunk_bytes must be a positive int, got {chunk_bytes!r}")


class Ingest:
    """The running SHA-256, size and first bytes of one upload.

    :meth:`feed` each chunk before writing it: it raises ``BlobTooLarge`` as soon as
    the total passes ``max_bytes`` and ``InvalidRequest`` for a chunk that is not bytes.
    """

    def __init__(self, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise InvalidRequest(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.max_bytes = max_bytes
        self.size = 0
        self._sha = hashlib.sha256()
        self._head = bytearray()

    def feed(self, chunk: object) -> bytes:
        """Account for ``chunk``; gives it back as ``bytes`` to write."""
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidRequest(f"an upload's chunks are bytes, got {type(chunk).__name__}")
        data = bytes(chunk)
        self.size += len(data)
        if self.size > self.max_bytes:
            raise BlobTooLarge(
                f"the upload passed its limit of {self.max_bytes} bytes",
                limit_bytes=self.max_bytes,
            )
        self._sha.update(data)
        if len(self._head) < SNIFF_BYTES:
            self._head += data[: SNIFF_BYTES - len(self._head)]
        return data

    def finish(self) -> tuple[str, str]:
        """The blob's id and sniffed MIME type; ``InvalidRequest`` if nothing arrived."""
        if self.size == 0:
            raise InvalidRequest("an upload holds at least one byte")
        return self._sha.hexdigest(), sniff_mime(bytes(self._head))
