"""Property tests: any chunking gives the same blob, and no input escapes the error tree."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.errors import ChatcoreError, InvalidRequest
from chatcore.media import (
    MediaKind,
    MediaRules,
    MemoryBlobStore,
    render_thumbnail,
    sniff_mime,
    upload,
)


async def _put_in_pieces(data: bytes, cuts: list[int]) -> str:
    async def pieces() -> AsyncIterator[bytes]:
        start = 0
        for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
            yield data[start:cut]
            start = cut

    async with MemoryBlobStore() as store:
        return (await store.put(pieces(), max_bytes=max(1, len(data)))).id


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.lists(st.integers(0, 3000), max_size=8))
def test_any_chunking_gives_the_same_id(data: bytes, cuts: list[int]) -> None:
    assert anyio.run(_put_in_pieces, data, cuts) == hashlib.sha256(data).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_sniffing_any_bytes_gives_a_type(data: bytes) -> None:
    assert "/" in sniff_mime(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600), st.sampled_from(list(MediaKind)))
def test_checking_any_bytes_raises_only_chatcore_errors(data: bytes, kind: MediaKind) -> None:
    with contextlib.suppress(ChatcoreError):
        MediaRules().check_type(kind, data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=600))
def test_thumbnailing_any_bytes_raises_only_invalid_request(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        render_thumbnail(b"\x89PNG\r\n\x1a\n" + data)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=3000), st.sampled_from(list(MediaKind)))
def test_an_upload_of_any_bytes_is_stored_whole_or_not_at_all(data: bytes, kind: MediaKind) -> None:
    async def run() -> None:
        async def one() -> AsyncIterator[bytes]:
            yield data

        async with MemoryBlobStore() as store:
            try:
                info = await upload(store, one(), kind=kind)
            except ChatcoreError:
                assert [b async for b in store.ids()] == []
            else:
                assert info.id == hashlib.sha256(data).hexdigest()

    anyio.run(run)
