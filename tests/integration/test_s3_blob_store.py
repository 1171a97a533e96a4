"""The S3 blob store against a real S3-compatible server (S3Proxy from scripts/services):
presigned GET URLs fetched over HTTP, expired ones refused, errors mapped."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import AsyncIterator

import botocore.auth
import httpx
import pytest

from chatcore.errors import InvalidRequest, NotFound, Unavailable
from chatcore.media import MediaKind, PresignedUrls, chunks_of, upload
from chatcore.media.s3 import MAX_PRESIGN_S, S3BlobStore
from tests.services import S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY, require, unique

pytestmark = [pytest.mark.anyio, pytest.mark.services]

PDF = b"%PDF-1.7\n" + b"chatcore " * 2000


@pytest.fixture
async def store() -> AsyncIterator[S3BlobStore]:
    require("s3proxy")
    async with S3BlobStore(
        S3_BUCKET,
        endpoint_url=S3_ENDPOINT,
        access_key=S3_ACCESS_KEY,
        secret_key=S3_SECRET_KEY,
        prefix=unique("test/") + "/",
        create_bucket=True,
    ) as store:
        yield store
        async for blob_id in store.ids():
            await store.delete(blob_id)


async def test_a_presigned_url_serves_the_blob_over_http(store: S3BlobStore) -> None:
    assert isinstance(store, PresignedUrls)
    info = await upload(store, chunks_of(PDF, chunk_bytes=1000), kind=MediaKind.FILE)
    url = await store.presigned_url(info.id, expires_s=60)
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
        assert got.status_code == 200
        assert got.content == PDF
        assert got.headers["content-type"] == "application/pdf"
        tampered = await client.get(url.replace(info.id, hashlib.sha256(b"x").hexdigest()))
        assert tampered.status_code == 403


async def test_an_expired_presigned_url_is_refused(
    store: S3BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = await store.put(chunks_of(PDF), max_bytes=len(PDF))
    an_hour_ago = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        hours=1
    )
    # botocore's clock, set back while it signs a URL (not the HEAD before it): the URL
    # was "signed an hour ago, for a minute".
    sign_now = botocore.auth.S3SigV4QueryAuth.add_auth

    def sign_an_hour_ago(self: botocore.auth.S3SigV4QueryAuth, request: object) -> None:
        with pytest.MonkeyPatch.context() as clock:
            clock.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: an_hour_ago)
            sign_now(self, request)

    monkeypatch.setattr(botocore.auth.S3SigV4QueryAuth, "add_auth", sign_an_hour_ago)
    url = await store.presigned_url(info.id, expires_s=60)
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
    assert got.status_code == 403
    assert b"expired" in got.content


async def test_presigning_checks_its_arguments(store: S3BlobStore) -> None:
    with pytest.raises(NotFound):
        await store.presigned_url(hashlib.sha256(b"absent").hexdigest(), expires_s=60)
    info = await store.put(chunks_of(PDF), max_bytes=len(PDF))
    for bad in (0, -5, MAX_PRESIGN_S + 1, True, 1.5):
        with pytest.raises(InvalidRequest):
            await store.presigned_url(info.id, expires_s=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        await store.presigned_url("../../etc/passwd", expires_s=60)


async def test_a_large_upload_goes_through_multipart(store: S3BlobStore) -> None:
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: over boto3's multipart threshold
    info = await store.put(chunks_of(data, chunk_bytes=256 * 1024), max_bytes=len(data))
    assert (await store.stat(info.id)).size == len(data)
    async with store.open(info.id, chunk_bytes=1024 * 1024) as chunks:
        digest = hashlib.sha256()
        async for chunk in chunks:
            digest.update(chunk)
    assert digest.hexdigest() == info.id


async def test_wrong_credentials_are_unavailable_not_a_botocore_error() -> None:
    require("s3proxy")
    async with S3BlobStore(
        S3_BUCKET, endpoint_url=S3_ENDPOINT, access_key="nobody", secret_key="wrong"
    ) as store:
        with pytest.raises(Unavailable):
            await store.put(chunks_of(b"x"), max_bytes=10)
        with pytest.raises(Unavailable):
            await store.stat(hashlib.sha256(b"x").hexdigest())


async def test_a_server_that_is_down_is_unavailable() -> None:
    async with S3BlobStore(
        S3_BUCKET,
        endpoint_url="http://127.0.0.1:9",
        access_key="a",
        secret_key="b",
        timeout_s=1,
    ) as store:
        with pytest.raises(Unavailable):
            await store.stat(hashlib.sha256(b"x").hexdigest())


def test_bad_settings_are_invalid() -> None:
    with pytest.raises(InvalidRequest):
        S3BlobStore("")
    with pytest.raises(InvalidRequest):
        S3BlobStore("b", timeout_s=0)
