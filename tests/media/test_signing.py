"""Server-signed download URLs: genuine until they expire, refused when forged."""

from __future__ import annotations

import hashlib

import pytest

from chatcore.errors import InvalidRequest, Unauthorized
from chatcore.media import DEFAULT_URL_TTL_S, UrlSigner

BLOB = hashlib.sha256(b"photo").hexdigest()
OTHER = hashlib.sha256(b"another chat's photo").hexdigest()
SECRET = b"s" * 32


def test_a_signed_url_verifies_until_it_expires() -> None:
    signer = UrlSigner(SECRET)
    url = signer.sign(BLOB, now_s=1000)
    assert url.expires == 1000 + DEFAULT_URL_TTL_S
    signer.verify(BLOB, str(url.expires), url.sig, now_s=1000)
    signer.verify(BLOB, url.expires, url.sig, now_s=url.expires)
    with pytest.raises(Unauthorized, match="expired"):
        signer.verify(BLOB, url.expires, url.sig, now_s=url.expires + 1)


def test_the_query_string_carries_expiry_and_signature() -> None:
    url = UrlSigner(SECRET).sign(BLOB, now_s=0, ttl_s=60)
    assert url.query() == f"expires=60&sig={url.sig}"
    assert len(url.sig) == 64


@pytest.mark.parametrize(
    ("blob", "expires", "sig"),
    [
        (OTHER, "1300", None),  # another blob
        (BLOB, "99999", None),  # a later expiry
        (BLOB, "1300", "0" * 64),  # a made-up signature
        (BLOB, "1300", ""),
        (BLOB, "13e2", None),
        (BLOB, "-1", None),
        (BLOB, None, None),
        (BLOB, True, None),
    ],
)
def test_an_altered_url_is_refused(blob: str, expires: object, sig: object) -> None:
    signer = UrlSigner(SECRET)
    url = signer.sign(BLOB, now_s=1000)
    with pytest.raises(Unauthorized) as info:
        signer.verify(blob, expires, url.sig if sig is None else sig, now_s=1000)
    assert info.value.code == "unauthorized"


def test_another_secret_does_not_verify_but_a_previous_one_does() -> None:
    old = UrlSigner(b"o" * 32).sign(BLOB, now_s=0)
    with pytest.raises(Unauthorized):
        UrlSigner(SECRET).verify(BLOB, old.expires, old.sig, now_s=0)
    UrlSigner(SECRET, previous=(b"o" * 32,)).verify(BLOB, old.expires, old.sig, now_s=0)


def test_bad_arguments_are_invalid() -> None:
    with pytest.raises(InvalidRequest):
        UrlSigner(b"short")
    with pytest.raises(InvalidRequest):
        UrlSigner(SECRET, previous=(b"short",))
    with pytest.raises(InvalidRequest):
        UrlSigner(SECRET).sign(BLOB, now_s=0, ttl_s=0)
    with pytest.raises(InvalidRequest):
        UrlSigner(SECRET).sign("../etc/passwd", now_s=0)
    with pytest.raises(InvalidRequest):
        UrlSigner(SECRET).verify("nope", "1", "x", now_s=0)
