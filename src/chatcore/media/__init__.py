"""Media: content-addressed blobs, the rules an upload must pass, thumbnails, retention.

Pure: ``rules`` (sniffed MIME type, kinds, size limits), ``signing`` (server-signed
download URLs), ``retention`` (which blobs to delete) and ``render_thumbnail``. The
``BlobStore`` port is in ``_base``; its backends are siblings: ``memory``,
``filesystem`` (the embedded default) and ``s3`` (imported by module name, it needs
the ``s3`` extra). This package needs the ``media`` extra (filetype, Pillow).
"""

from chatcore.media._base import DEFAULT_CHUNK_BYTES, BlobInfo, BlobStore, PresignedUrls
from chatcore.media.filesystem import FilesystemBlobStore
from chatcore.media.memory import MemoryBlobStore
from chatcore.media.retention import DEFAULT_GRACE_MS, sweep, sweep_unreferenced, unreferenced
from chatcore.media.rules import (
    DEFAULT_RULES,
    SNIFF_BYTES,
    UNRECOGNISED_MIME,
    KindRule,
    MediaKind,
    MediaRules,
    check_blob_id,
    sniff_mime,
)
from chatcore.media.signing import DEFAULT_URL_TTL_S, SignedUrl, UrlSigner
from chatcore.media.thumbnail import (
    THUMBNAIL_MIME,
    ThumbnailOptions,
    make_thumbnail,
    render_thumbnail,
)
from chatcore.media.upload import chunks_of, read_all, upload

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "DEFAULT_GRACE_MS",
    "DEFAULT_RULES",
    "DEFAULT_URL_TTL_S",
    "SNIFF_BYTES",
    "THUMBNAIL_MIME",
    "UNRECOGNISED_MIME",
    "BlobInfo",
    "BlobStore",
    "FilesystemBlobStore",
    "KindRule",
    "MediaKind",
    "MediaRules",
    "MemoryBlobStore",
    "PresignedUrls",
    "SignedUrl",
    "ThumbnailOptions",
    "UrlSigner",
    "check_blob_id",
    "chunks_of",
    "make_thumbnail",
    "read_all",
    "render_thumbnail",
    "sniff_mime",
    "sweep",
    "sweep_unreferenced",
    "unreferenced",
    "upload",
]
