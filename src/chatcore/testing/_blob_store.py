"""``BlobStore`` conformance: what every backend of the port must do.

Each test gets a fresh, empty store from the hook (a new folder, bucket prefix, ...).
Blob contents are random per test, so tests never share a blob. The suite imports
nothing of ``chatcore.media`` at run time (it needs only the ``testing`` extra).
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, ClassVar

import anyio
import pytest

from chatcore.errors import BlobTooLarge, ChatcoreClosed, InvalidRequest, NotFound
from chatcore.testing._backend import StoreEnv, StoreSuite

if TYPE_CHECKING:
    from chatcore.media._base import BlobStore

UNRECOGNISED_MIME = "application/octet-stream"

__all__ = ["BlobStoreSuite"]

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000105f5276ce20000000049454e44ae426082"
)


def noise(size: int) -> bytes:
    """Random bytes that no signature matches (they start with a zero byte and text)."""
    return b"\x00chatcore-noise" + os.urandom(max(0, size - 15))


async def chunks_of(data: bytes, *, chunk_bytes: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk_bytes):
        yield data[start : start + chunk_bytes]


async def read_all(store: BlobStore, blob_id: str, *, max_bytes: int) -> bytes:
    async with store.open(blob_id) as chunks:
        data = b"".join([chunk async for chunk in chunks])
    assert len(data) <= max_bytes
    return data


async def ids(store: BlobStore) -> set[str]:
    return {blob_id async for blob_id in store.ids()}


class BlobStoreSuite(StoreSuite["BlobStore"]):
    """The ``BlobStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new, not
    yet entered ``BlobStore`` over this test's own storage (empty at first). Set
    ``durable`` when a second instance sees what the first stored.
    """

    durable: ClassVar[bool] = False

    async def test_a_put_blob_reads_back_with_its_sha256_id(self, store: BlobStore) -> None:
        data = noise(200_000)
        info = await store.put(chunks_of(data, chunk_bytes=7_000), max_bytes=len(data))
        assert info.id == hashlib.sha256(data).hexdigest()
        assert info.size == len(data)
        assert info.mime == UNRECOGNISED_MIME
        assert await store.stat(info.id) == info
        assert await read_all(store, info.id, max_bytes=len(data)) == data
        assert await ids(store) == {info.id}

    async def test_open_streams_in_chunks_of_the_asked_size(self, store: BlobStore) -> None:
        data = noise(10_000)
        info = await store.put(chunks_of(data), max_bytes=len(data))
        async with store.open(info.id, chunk_bytes=4096) as chunks:
            sizes = [len(chunk) async for chunk in chunks]
        assert sum(sizes) == len(data)
        assert all(size <= 4096 for size in sizes)
        assert len(sizes) >= 3

    async def test_the_mime_type_is_sniffed_not_claimed(self, store: BlobStore) -> None:
        info = await store.put(chunks_of(PNG_1X1, chunk_bytes=3), max_bytes=1000)
        assert info.mime == "image/png"
        assert (await store.stat(info.id)).mime == "image/png"

    async def test_the_same_bytes_twice_are_one_blob(self, store: BlobStore) -> None:
        data = noise(5000)
        first = await store.put(chunks_of(data, chunk_bytes=100), max_bytes=5000)
        second = await store.put(chunks_of(data, chunk_bytes=999), max_bytes=5000)
        assert (first.id, first.size, first.mime) == (second.id, second.size, second.mime)
        assert second.uploaded_ms >= first.uploaded_ms
        assert await ids(store) == {first.id}

    async def test_an_upload_may_be_exactly_max_bytes(self, store: BlobStore) -> None:
        info = await store.put(chunks_of(noise(4096)), max_bytes=4096)
        assert info.size == 4096

    async def test_a_too_large_upload_stops_there_and_leaves_nothing(
        self, store: BlobStore
    ) -> None:
        kept = await store.put(chunks_of(noise(100)), max_bytes=100)
        pulled = 0

        async def endless() -> AsyncIterator[bytes]:
            nonlocal pulled
            while True:
                pulled += 1
                yield noise(1000)

        with pytest.raises(BlobTooLarge) as info:
            await store.put(endless(), max_bytes=10_000)
        assert info.value.code == "too_large"
        assert info.value.limit_bytes == 10_000
        assert pulled == 11, "the limit is enforced while streaming"
        assert await ids(store) == {kept.id}

    async def test_a_failing_stream_leaves_nothing(self, store: BlobStore) -> None:
        async def broken() -> AsyncIterator[bytes]:
            yield noise(5000)
            raise RuntimeError("the client went away")

        with pytest.raises(RuntimeError):
            await store.put(broken(), max_bytes=1_000_000)
        assert await ids(store) == set()

    async def test_a_cancelled_put_leaves_nothing(self, store: BlobStore) -> None:
        started = anyio.Event()

        async def stalled() -> AsyncIterator[bytes]:
            yield noise(5000)
            started.set()
            await anyio.Event().wait()
            yield b""  # pragma: no cover - never reached

        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(store.put, stalled(), max_bytes=1_000_000))
            await started.wait()
            assert await ids(store) == set(), "a blob is visible only once whole"
            tg.cancel_scope.cancel()
        assert await ids(store) == set()

    @pytest.mark.parametrize(
        "chunks",
        [[], [b""], [b"", b""], ["text"], [b"ok", 42]],
        ids=["nothing", "empty", "empties", "str", "int"],
    )
    async def test_bad_uploads_are_refused_and_change_nothing(
        self, store: BlobStore, chunks: list[object]
    ) -> None:
        async def stream() -> AsyncIterator[object]:
            for chunk in chunks:
                yield chunk

        with pytest.raises(InvalidRequest):
            await store.put(stream(), max_bytes=1000)  # type: ignore[arg-type]
        assert await ids(store) == set()

    @pytest.mark.parametrize("max_bytes", [0, -1, True, 1.5])
    async def test_a_bad_limit_is_refused(self, store: BlobStore, max_bytes: object) -> None:
        with pytest.raises(InvalidRequest):
            await store.put(chunks_of(b"x"), max_bytes=max_bytes)  # type: ignore[arg-type]
        assert await ids(store) == set()

    async def test_an_unknown_blob_is_not_found(self, store: BlobStore) -> None:
        unknown = hashlib.sha256(b"never stored").hexdigest()
        with pytest.raises(NotFound):
            await store.stat(unknown)
        with pytest.raises(NotFound):
            async with store.open(unknown):
                pass  # pragma: no cover - not reached
        assert await store.delete(unknown) is False

    @pytest.mark.parametrize(
        "blob_id",
        ["", "abc", "A" * 64, "g" * 64, "../" + "0" * 61, "0" * 65, "0" * 63 + "\n"],
    )
    async def test_a_malformed_id_is_invalid(self, store: BlobStore, blob_id: str) -> None:
        with pytest.raises(InvalidRequest):
            await store.stat(blob_id)
        with pytest.raises(InvalidRequest):
            async with store.open(blob_id):
                pass  # pragma: no cover - not reached
        with pytest.raises(InvalidRequest):
            await store.delete(blob_id)

    async def test_delete_removes_one_blob(self, store: BlobStore) -> None:
        a = await store.put(chunks_of(noise(300)), max_bytes=300)
        b = await store.put(chunks_of(noise(300)), max_bytes=300)
        assert await store.delete(a.id) is True
        assert await store.delete(a.id) is False
        with pytest.raises(NotFound):
            await store.stat(a.id)
        assert await ids(store) == {b.id}
        again = await store.put(
            chunks_of(await read_all(store, b.id, max_bytes=300)), max_bytes=300
        )
        assert again.id == b.id

    async def test_listing_gives_every_blob_once(self, store: BlobStore) -> None:
        stored = {(await store.put(chunks_of(noise(50)), max_bytes=50)).id for _ in range(25)}
        listed = [blob_id async for blob_id in store.ids()]
        assert sorted(listed) == sorted(stored)

    async def test_concurrent_puts_of_the_same_bytes(self, store: BlobStore) -> None:
        data = noise(50_000)
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(
                    functools.partial(
                        store.put, chunks_of(data, chunk_bytes=1000), max_bytes=len(data)
                    )
                )
        assert await ids(store) == {hashlib.sha256(data).hexdigest()}
        assert await read_all(store, hashlib.sha256(data).hexdigest(), max_bytes=len(data)) == data

    async def test_a_closed_store_refuses(self, env: StoreEnv[BlobStore]) -> None:
        store = await env.open()
        await store.aclose()
        await store.aclose()
        with pytest.raises(ChatcoreClosed):
            await store.put(chunks_of(b"x"), max_bytes=10)

    async def test_a_second_instance_sees_the_blobs(self, env: StoreEnv[BlobStore]) -> None:
        if not env.durable:
            pytest.skip("not a durable backend")
        first = await env.open()
        info = await first.put(chunks_of(PNG_1X1), max_bytes=1000)
        second = await env.open()
        assert await second.stat(info.id) == info
        assert await read_all(second, info.id, max_bytes=1000) == PNG_1X1
