"""The pure upload rules: MIME sniffed from the bytes, kinds, size limits, blob ids."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from chatcore.errors import BlobTooLarge, InvalidRequest
from chatcore.media import (
    DEFAULT_RULES,
    UNRECOGNISED_MIME,
    KindRule,
    MediaKind,
    MediaRules,
    check_blob_id,
    sniff_mime,
)


def image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, format=fmt)
    return out.getvalue()


ELF = b"\x7fELF\x02\x01\x01" + bytes(100)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (image_bytes("PNG"), "image/png"),
        (image_bytes("JPEG"), "image/jpeg"),
        (image_bytes("GIF"), "image/gif"),
        (image_bytes("WEBP"), "image/webp"),
        (PDF, "application/pdf"),
        (ELF, "application/x-executable"),
        (b"just some text\n", UNRECOGNISED_MIME),
        (b"<html><script>alert(1)</script></html>", UNRECOGNISED_MIME),
    ],
)
def test_the_type_comes_from_the_bytes(data: bytes, mime: str) -> None:
    assert sniff_mime(data) == mime


def test_only_the_first_bytes_are_sniffed() -> None:
    assert sniff_mime(bytes(9000) + image_bytes("PNG")) == UNRECOGNISED_MIME
    assert sniff_mime(image_bytes("PNG") + bytes(100_000)) == "image/png"


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        (MediaKind.IMAGE, image_bytes("PNG")),
        (MediaKind.FILE, PDF),
        (MediaKind.FILE, b"notes.txt: plain text is a file"),
    ],
)
def test_a_kind_accepts_its_types(kind: MediaKind, data: bytes) -> None:
    assert MediaRules().check_type(kind, data) == sniff_mime(data)


@pytest.mark.parametrize(
    ("kind", "data", "sniffed"),
    [
        (MediaKind.IMAGE, PDF, "application/pdf"),
        (MediaKind.IMAGE, b"<svg onload=alert(1)>", UNRECOGNISED_MIME),
        (MediaKind.VIDEO, image_bytes("PNG"), "image/png"),
        (MediaKind.FILE, ELF, "application/x-executable"),
        (MediaKind.AUDIO, b"x/evil", UNRECOGNISED_MIME),
    ],
)
def test_a_wrong_type_is_refused_by_name(kind: MediaKind, data: bytes, sniffed: str) -> None:
    with pytest.raises(InvalidRequest, match=sniffed) as info:
        MediaRules().check_type(kind, data)
    assert info.value.code == "invalid"


def test_every_kind_has_a_size_limit_by_default() -> None:
    rules = MediaRules()
    for kind in MediaKind:
        limit = rules.rule(kind).max_bytes
        assert 0 < limit <= 64 * 1024 * 1024
        rules.check_size(kind, limit)
        with pytest.raises(BlobTooLarge) as info:
            rules.check_size(kind, limit + 1)
        assert info.value.code == "too_large"
        assert info.value.limit_bytes == limit


def test_rules_can_be_replaced_per_kind_or_refused() -> None:
    rules = MediaRules(
        {MediaKind.IMAGE: KindRule(frozenset({"image/png"}), 1000), MediaKind.VIDEO: None}
    )
    assert rules.rule(MediaKind.IMAGE).max_bytes == 1000
    assert rules.rule(MediaKind.FILE) == DEFAULT_RULES[MediaKind.FILE]
    with pytest.raises(InvalidRequest, match="video uploads are not allowed"):
        rules.rule(MediaKind.VIDEO)
    with pytest.raises(InvalidRequest):
        rules.check_type(MediaKind.IMAGE, image_bytes("JPEG"))
    with pytest.raises(InvalidRequest):
        MediaRules({MediaKind.FILE: KindRule(frozenset(), 0)})


def test_a_blob_id_is_64_lowercase_hex_digits() -> None:
    good = hashlib.sha256(b"x").hexdigest()
    assert check_blob_id(good) == good
    for bad in (good.upper(), good[:-1], good + "0", "file:///etc/passwd", None, 42):
        with pytest.raises(InvalidRequest):
            check_blob_id(bad)
