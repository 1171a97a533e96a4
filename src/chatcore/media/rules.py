"""What an upload may be: the MIME type sniffed from its first bytes, its kind, its size.

Pure: bytes and numbers in, a :class:`MediaKind` or an error out. The type comes from
the bytes alone (the ``filetype`` library's signatures); a type a client claims is
never read. Each kind has an allowlist of types and a size limit, with safe defaults.
"""

from __future__ import annotations

import enum
import re

import msgspec

from chatcore._extras import missing_extra
from chatcore.errors import BlobTooLarge, InvalidRequest

try:
    import filetype
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("media", exc, needed_by="chatcore.media") from exc

__all__ = [
    "DEFAULT_RULES",
    "SNIFF_BYTES",
    "UNRECOGNISED_MIME",
    "KindRule",
    "MediaKind",
    "MediaRules",
    "check_blob_id",
    "sniff_mime",
]

SNIFF_BYTES = 8192
"""How many leading bytes :func:`sniff_mime` looks at (more are ignored)."""

UNRECOGNISED_MIME = "application/octet-stream"
"""The type of bytes no signature matches (text, unknown formats)."""

_BLOB_ID = re.compile(r"[0-9a-f]{64}")
MiB = 1024 * 1024


def check_blob_id(blob_id: object) -> str:
    """``blob_id`` if it is a blob id (64 lowercase hex digits), else ``InvalidRequest``."""
    if not isinstance(blob_id, str) or _BLOB_ID.fullmatch(blob_id) is None:
        raise InvalidRequest(f"not a blob id (64 lowercase hex digits): {blob_id!r:.80}")
    return blob_id


def sniff_mime(head: bytes) -> str:
    """The MIME type of bytes starting with ``head`` (its first :data:`SNIFF_BYTES` count)."""
    kind = filetype.guess(bytes(head[:SNIFF_BYTES]))
    return UNRECOGNISED_MIME if kind is None else str(kind.mime)


class MediaKind(enum.Enum):
    """What a message shows: an image inline, a player, or a file to download."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"


class KindRule(msgspec.Struct, frozen=True):
    """The types one kind accepts and how large its blobs may be."""

    mimes: frozenset[str]
    """Sniffed types accepted; :data:`UNRECOGNISED_MIME` accepts bytes no signature matches."""
    max_bytes: int
    """Size limit of one blob of this kind."""


DEFAULT_RULES: dict[MediaKind, KindRule] = {
    MediaKind.IMAGE: KindRule(
        frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif"}),
        16 * MiB,
    ),
    MediaKind.VIDEO: KindRule(
        frozenset(
            {"video/mp4", "video/x-m4v", "video/webm", "video/quicktime", "video/x-matroska"}
            | {"video/3gpp"}
        ),
        64 * MiB,
    ),
    MediaKind.AUDIO: KindRule(
        frozenset(
            {"audio/mpeg", "audio/ogg", "audio/mp4", "audio/aac", "audio/x-wav", "audio/x-flac"}
            | {"audio/amr"}
        ),
        16 * MiB,
    ),
    MediaKind.FILE: KindRule(
        frozenset(
            {"application/pdf", "application/zip", "application/gzip", "application/epub+zip"}
            | {"application/x-7z-compressed", "application/x-tar", "application/rtf"}
            | {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint"}
            | {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
                "application/vnd.oasis.opendocument.text",
                "application/vnd.oasis.opendocument.spreadsheet",
                "application/vnd.oasis.opendocument.presentation",
            }
            | {UNRECOGNISED_MIME}
        ),
        32 * MiB,
    ),
}
"""The defaults: common image/video/audio formats; documents, archives and unrecognised
bytes (text) as files. Executables, HTML, SVG and scripts that a signature recognises
are in no kind."""


class MediaRules:
    """The allowlist of kinds: which sniffed types each accepts, and its size limit.

    ``rules`` replaces the rule of the kinds it names (the others keep
    :data:`DEFAULT_RULES`); a kind mapped to ``None`` is refused altogether.
    Raises ``InvalidRequest`` for a ``max_bytes`` below 1.
    """

    def __init__(self, rules: dict[MediaKind, KindRule | None] | None = None) -> None:
        merged: dict[MediaKind, KindRule | None] = {**DEFAULT_RULES, **(rules or {})}
        for kind, rule in merged.items():
            if rule is not None and rule.max_bytes < 1:
                raise InvalidRequest(f"{kind.value}: max_bytes must be at least 1")
        self._rules = {kind: rule for kind, rule in merged.items() if rule is not None}

    def rule(self, kind: MediaKind) -> KindRule:
        """The rule of an allowed kind; ``InvalidRequest`` for a refused one."""
        rule = self._rules.get(kind)
        if rule is None:
            raise InvalidRequest(f"{kind.value} uploads are not allowed")
        return rule

    def check_type(self, kind: MediaKind, head: bytes) -> str:
        """The sniffed type of bytes starting with ``head`` if ``kind`` accepts it.

        Raises ``InvalidRequest`` naming the sniffed type otherwise (``head`` holds at
        least :data:`SNIFF_BYTES` bytes, or all of a shorter blob).
        """
        mime = sniff_mime(head)
        if mime not in self.rule(kind).mimes:
            raise InvalidRequest(f"a {kind.value} may not be {mime} (sniffed from its bytes)")
        return mime

    def check_size(self, kind: MediaKind, size: int) -> None:
        """``BlobTooLarge`` if ``size`` is over ``kind``'s limit."""
        limit = self.rule(kind).max_bytes
        if size > limit:
            raise BlobTooLarge(
                f"a {kind.value} may hold at most {limit} bytes, got {size}", limit_bytes=limit
            )
