"""The thin shell between an upload and a ``BlobStore``: the rules applied while streaming.

:func:`upload` reads the first :data:`~chatcore.media.rules.SNIFF_BYTES` of the
stream, refuses a type the kind does not accept before anything is stored, then
hands the whole stream to the store with the kind's size limit (so a too-large upload
stops as soon as it passes it, and leaves nothing behind).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence

from chatcore.errors import BlobTooLarge, InvalidRequest
from chatcore.media._base import BlobInfo, BlobStore
from chatcore.media.rules import SNIFF_BYTES, MediaKind, MediaRules

__all__ = ["chunks_of", "read_all", "upload"]


async def upload(
    store: BlobStore,
    chunks: AsyncIterable[bytes],
    *,
    kind: MediaKind,
    rules: MediaRules | None = None,
) -> BlobInfo:
    """Store an upload of ``kind`` if its sniffed type and size are allowed.

    Raises ``InvalidRequest`` for a kind that is refused, a type the kind does not
    accept (named in the message), an empty upload or a chunk that is not bytes;
    ``BlobTooLarge`` past the kind's size limit. Nothing is stored then.
    """
    rules = rules or MediaRules()
    rule = rules.rule(kind)
    stream = aiter(chunks)
    buffered: list[bytes] = []
    head = 0
    async for chunk in stream:
        if not isinstance(chunk, bytes):
            raise InvalidRequest(f"an upload's chunks are bytes, got {type(chunk).__name__}")
        buffered.append(chunk)
        head += len(chunk)
        if head >= SNIFF_BYTES:
            break
    if head > rule.max_bytes:
        raise BlobTooLarge(
            f"a {kind.value} may hold at most {rule.max_bytes} bytes", limit_bytes=rule.max_bytes
        )
    if head == 0:
        raise InvalidRequest("an upload holds at least one byte")
    rules.check_type(kind, b"".join(buffered))
    return await store.put(_replay(buffered, stream), max_bytes=rule.max_bytes)


async def _replay(first: Sequence[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk


async def chunks_of(data: bytes, *, chunk_bytes: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``data`` as an async stream of chunks (for tests and small blobs such as thumbnails)."""
    for start in range(0, len(data), chunk_bytes):
        yield data[start : start + chunk_bytes]


async def read_all(store: BlobStore, blob_id: str, *, max_bytes: int) -> bytes:
    """A whole blob in memory, if it holds at most ``max_bytes`` (else ``BlobTooLarge``).

    Raises ``NotFound`` for an unknown blob, ``InvalidRequest`` for a bad id.
    """
    info = await store.stat(blob_id)
    if info.size > max_bytes:
        raise BlobTooLarge(
            f"blob {blob_id} holds {info.size} bytes, over {max_bytes}", limit_bytes=max_bytes
        )
    parts: list[bytes] = []
    size = 0
    async with store.open(blob_id) as chunks:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise BlobTooLarge(f"blob {blob_id} grew over {max_bytes}", limit_bytes=max_bytes)
            parts.append(chunk)
    return b"".join(parts)
