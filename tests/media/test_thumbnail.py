"""Thumbnails: bounded decoding, WebP output, stored as a second blob."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from chatcore.errors import BlobTooLarge, InvalidRequest, NotFound
from chatcore.media import (
    THUMBNAIL_MIME,
    KindRule,
    MediaKind,
    MediaRules,
    MemoryBlobStore,
    ThumbnailOptions,
    chunks_of,
    make_thumbnail,
    read_all,
    render_thumbnail,
)


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def test_a_thumbnail_fits_max_side_and_keeps_the_aspect() -> None:
    thumb = render_thumbnail(encode(Image.new("RGB", (1200, 600), "blue")))
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "WEBP"
        assert image.size == (320, 160)


def test_transparency_is_kept_and_small_images_keep_their_size() -> None:
    thumb = render_thumbnail(encode(Image.new("RGBA", (40, 30), (0, 0, 0, 0))))
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.size == (40, 30)
        assert image.mode == "RGBA"


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = encode(Image.new("1", (8000, 8000)))  # 64 Mpx in a few KiB
    assert len(bomb) < 100_000
    with pytest.raises(InvalidRequest, match="8000x8000"):
        render_thumbnail(bomb)
    with pytest.raises(InvalidRequest, match="over the limit"):
        render_thumbnail(encode(Image.new("RGB", (20, 20))), ThumbnailOptions(max_pixels=399))


@pytest.mark.parametrize(
    "data", [b"", b"not an image", encode(Image.new("RGB", (50, 50)), "JPEG")[:200]]
)
def test_bytes_that_are_no_image_are_invalid(data: bytes) -> None:
    with pytest.raises(InvalidRequest):
        render_thumbnail(data)


def test_options_out_of_range_are_invalid() -> None:
    with pytest.raises(InvalidRequest):
        render_thumbnail(encode(Image.new("RGB", (2, 2))), ThumbnailOptions(quality=0))


@pytest.mark.anyio
async def test_make_thumbnail_stores_a_second_blob() -> None:
    photo = encode(Image.new("RGB", (800, 800), "green"), "JPEG")
    async with MemoryBlobStore() as store:
        original = await store.put(chunks_of(photo), max_bytes=len(photo))
        thumb = await make_thumbnail(store, original.id)
        assert thumb.id != original.id
        assert thumb.mime == THUMBNAIL_MIME
        data = await read_all(store, thumb.id, max_bytes=thumb.size)
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (320, 320)
        assert {b async for b in store.ids()} == {original.id, thumb.id}


@pytest.mark.anyio
async def test_make_thumbnail_refuses_what_is_no_allowed_image() -> None:
    photo = encode(Image.new("RGB", (100, 100)))
    async with MemoryBlobStore() as store:
        text = await store.put(chunks_of(b"plain text"), max_bytes=100)
        png = await store.put(chunks_of(photo), max_bytes=len(photo))
        with pytest.raises(InvalidRequest, match="not an image"):
            await make_thumbnail(store, text.id)
        with pytest.raises(NotFound):
            await make_thumbnail(store, "0" * 64)
        small = MediaRules({MediaKind.IMAGE: KindRule(frozenset({"image/png"}), 100)})
        with pytest.raises(BlobTooLarge):
            await make_thumbnail(store, png.id, rules=small)
        assert {b async for b in store.ids()} == {text.id, png.id}
