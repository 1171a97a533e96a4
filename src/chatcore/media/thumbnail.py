"""Image thumbnails with Pillow, decoded within bounds, stored as a second blob.

:func:`render_thumbnail` is pure (bytes in, bytes out): it reads the image's header
first and refuses one over ``max_pixels`` before decoding a pixel (a decompression
bomb: a few KiB that would decode to gigabytes), then shrinks it to fit
``max_side`` and encodes it as WebP (it keeps transparency). :func:`make_thumbnail`
reads the original from a store (bounded by the image kind's size), renders in a
worker thread and puts the result.
"""

from __future__ import annotations

import io
import warnings

import anyio.to_thread
import msgspec

from chatcore._extras import missing_extra
from chatcore.errors import InvalidRequest
from chatcore.media._base import BlobInfo, BlobStore
from chatcore.media.rules import MediaKind, MediaRules
from chatcore.media.upload import chunks_of, read_all

try:
    from PIL import Image, ImageOps
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("media", exc, needed_by="chatcore.media.thumbnail") from exc

__all__ = ["THUMBNAIL_MIME", "ThumbnailOptions", "make_thumbnail", "render_thumbnail"]

THUMBNAIL_MIME = "image/webp"


class ThumbnailOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How thumbnails are made."""

    max_side: int = 320
    """The longer side of a thumbnail, in pixels (a smaller image keeps its size)."""
    max_pixels: int = 40_000_000
    """Images with more pixels (width x height) are refused before decoding."""
    quality: int = 80
    """WebP quality, 1..100."""


def render_thumbnail(data: bytes, options: ThumbnailOptions | None = None) -> bytes:
    """A WebP thumbnail of the image ``data``.

    Raises ``InvalidRequest`` for bytes Pillow cannot read as an image, an image over
    ``max_pixels``, or options out of range.
    """
    options = options or ThumbnailOptions()
    if options.max_side < 1 or options.max_pixels < 1 or not 1 <= options.quality <= 100:
        raise InvalidRequest(f"thumbnail options out of range: {options}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > options.max_pixels:
                    raise InvalidRequest(
                        f"an image of {width}x{height} pixels is over the limit of "
                        f"{options.max_pixels} pixels"
                    )
                image.draft("RGB", (options.max_side, options.max_side))
                thumb = ImageOps.exif_transpose(image)
                thumb.thumbnail((options.max_side, options.max_side))
                if thumb.mode not in ("RGB", "RGBA"):
                    thumb = thumb.convert("RGBA" if "A" in thumb.getbands() else "RGB")
                out = io.BytesIO()
                thumb.save(out, format="WEBP", quality=options.quality)
                return out.getvalue()
    except InvalidRequest:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as exc:
        raise InvalidRequest(f"not an image that can be thumbnailed: {exc}") from exc


async def make_thumbnail(
    store: BlobStore,
    blob_id: str,
    *,
    rules: MediaRules | None = None,
    options: ThumbnailOptions | None = None,
) -> BlobInfo:
    """Render the thumbnail of image blob ``blob_id`` and put it as a blob of its own.

    Raises ``NotFound`` for an unknown blob, ``InvalidRequest`` for a blob that is not
    an accepted image type, ``BlobTooLarge`` for one over the image size limit.
    """
    rules = rules or MediaRules()
    rule = rules.rule(MediaKind.IMAGE)
    info = await store.stat(blob_id)
    if info.mime not in rule.mimes:
        raise InvalidRequest(f"blob {blob_id} is {info.mime}, not an image")
    data = await read_all(store, blob_id, max_bytes=rule.max_bytes)
    thumb = await anyio.to_thread.run_sync(render_thumbnail, data, options)
    return await store.put(chunks_of(thumb), max_bytes=len(thumb))
