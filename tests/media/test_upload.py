"""The upload shell: the kind's type checked before storing, its limit while streaming."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from PIL import Image

from chatcore.errors import BlobTooLarge, InvalidRequest
from chatcore.media import (
    KindRule,
    MediaKind,
    MediaRules,
    MemoryBlobStore,
    chunks_of,
    upload,
)

pytestmark = pytest.mark.anyio

PNG = io.BytesIO()
Image.new("RGB", (8, 8), "red").save(PNG, format="PNG")
PNG_BYTES = PNG.getvalue()


async def test_an_allowed_upload_is_stored() -> None:
    async with MemoryBlobStore() as store:
        info = await upload(store, chunks_of(PNG_BYTES, chunk_bytes=5), kind=MediaKind.IMAGE)
        assert info.mime == "image/png"
        assert [b async for b in store.ids()] == [info.id]


async def test_a_wrong_type_is_refused_before_the_rest_is_read() -> None:
    pulled = 0

    async def pdf_then_more() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"%PDF-1.7\n" + bytes(10_000)

    async with MemoryBlobStore() as store:
        with pytest.raises(InvalidRequest, match="application/pdf"):
            await upload(store, pdf_then_more(), kind=MediaKind.IMAGE)
        assert pulled == 1
        assert [b async for b in store.ids()] == []


async def test_a_kind_s_size_limit_applies_while_streaming() -> None:
    rules = MediaRules({MediaKind.FILE: KindRule(frozenset({"application/octet-stream"}), 50_000)})
    async with MemoryBlobStore() as store:
        with pytest.raises(BlobTooLarge) as info:
            await upload(store, chunks_of(bytes(60_000)), kind=MediaKind.FILE, rules=rules)
        assert info.value.limit_bytes == 50_000
        with pytest.raises(BlobTooLarge):
            await upload(
                store,
                chunks_of(bytes(20)),
                kind=MediaKind.FILE,
                rules=MediaRules(
                    {MediaKind.FILE: KindRule(frozenset({"application/octet-stream"}), 10)}
                ),
            )
        assert [b async for b in store.ids()] == []


async def test_empty_odd_or_refused_uploads_change_nothing() -> None:
    async def texts() -> AsyncIterator[bytes]:
        yield "text"  # type: ignore[misc]

    async with MemoryBlobStore() as store:
        with pytest.raises(InvalidRequest):
            await upload(store, chunks_of(b""), kind=MediaKind.FILE)
        with pytest.raises(InvalidRequest):
            await upload(store, texts(), kind=MediaKind.FILE)
        with pytest.raises(InvalidRequest, match="not allowed"):
            await upload(
                store,
                chunks_of(PNG_BYTES),
                kind=MediaKind.IMAGE,
                rules=MediaRules({MediaKind.IMAGE: None}),
            )
        assert [b async for b in store.ids()] == []


def test_the_testing_kit_needs_no_media_extra() -> None:
    script = (
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('filetype', 'PIL', 'boto3', 'botocore'):\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Refuse())\n"
        "from chatcore.testing import BlobStoreSuite\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
