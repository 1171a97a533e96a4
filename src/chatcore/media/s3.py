"""A ``BlobStore`` on S3 or any S3-compatible server (S3Proxy, MinIO, Ceph RGW, R2).

boto3 runs in worker threads (``anyio.to_thread``), so the store works under any anyio
backend. A put spools the chunks to a local temporary file as they arrive (hashing
and counting them; the upload is never whole in memory), then uploads that file
under ``<prefix><id>`` (boto3 switches to a multipart upload for large files). The
sniffed type is the object's ``Content-Type``; ``uploaded_ms`` its ``Last-Modified``
(a second put of the same bytes uploads again and moves it). Downloads go straight
from the bucket by presigned GET URL (:meth:`S3BlobStore.presigned_url`).

Errors of botocore never leak: a missing object is ``NotFound``, the rest ``Unavailable``.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Self, TypeVar

import anyio
import anyio.to_thread

from chatcore._extras import missing_extra
from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, InvalidRequest, NotFound, Unavailable
from chatcore.media._base import DEFAULT_CHUNK_BYTES, BlobInfo
from chatcore.media._ingest import Ingest, check_chunk_bytes
from chatcore.media.rules import check_blob_id

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("s3", exc, needed_by="chatcore.media.s3") from exc

__all__ = ["MAX_PRESIGN_S", "S3BlobStore"]

MAX_PRESIGN_S = 7 * 24 * 3600
"""The longest a presigned URL may live (SigV4's own limit)."""

_SPOOL_IN_MEMORY_BYTES = 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
T = TypeVar("T")


class S3BlobStore(ClosingContext):
    """Blobs as objects ``<prefix><id>`` in one bucket.

    ``endpoint_url`` is the server (None: AWS); ``region``, ``access_key`` and
    ``secret_key`` as for any S3 client (None: boto3's usual lookup, environment or
    instance role). ``path_style`` addresses ``endpoint/bucket/key`` (what most
    S3-compatible servers want). ``create_bucket`` creates the bucket on enter if it
    is missing. ``timeout_s`` bounds connecting and each read.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        prefix: str = "blobs/",
        path_style: bool = True,
        create_bucket: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        if not bucket:
            raise InvalidRequest("an S3 bucket name is needed")
        if not timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {timeout_s}")
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"max_attempts": 3, "mode": "standard"},
            # Checksums only where S3 requires them: S3-compatible servers (S3Proxy)
            # refuse the trailing-checksum uploads that botocore now sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        self.bucket = bucket
        self.prefix = prefix
        self._create_bucket = create_bucket
        self._closed = False

    async def __aenter__(self) -> Self:
        if self._create_bucket:
            await self._call("create the bucket", self._ensure_bucket)
        return self

    def _ensure_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                raise
            self._client.create_bucket(Bucket=self.bucket)

    def _key(self, blob_id: str) -> str:
        return self.prefix + check_blob_id(blob_id)

    async def _call(
        self,
        doing: str,
        fn: Callable[..., T],
        *args: Any,
        missing: str = "",
        **kwargs: Any,
    ) -> T:
        """Run one blocking boto3 call in a thread, mapping its errors (``missing``: NotFound's)."""
        if self._closed:
            raise ChatcoreClosed("S3BlobStore used after aclose()")
        try:
            return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise NotFound(missing or f"S3: nothing found to {doing}") from exc
            raise Unavailable(f"S3 failed to {doing}: {exc}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"S3 failed to {doing}: {exc}") from exc

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> BlobInfo:
        if self._closed:
            raise ChatcoreClosed("S3BlobStore used after aclose()")
        ingest = Ingest(max_bytes)
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES) as spool:
            async for chunk in chunks:
                data = ingest.feed(chunk)
                await anyio.to_thread.run_sync(spool.write, data)
            blob_id, mime = ingest.finish()
            spool.seek(0)
            await self._call(
                "upload a blob",
                self._client.upload_fileobj,
                spool,
                self.bucket,
                self._key(blob_id),
                ExtraArgs={"ContentType": mime},
            )
        return await self.stat(blob_id)

    async def stat(self, blob_id: str) -> BlobInfo:
        key = self._key(blob_id)
        head = await self._call(
            f"stat blob {blob_id}",
            self._client.head_object,
            Bucket=self.bucket,
            Key=key,
            missing=f"no blob {blob_id}",
        )
        return BlobInfo(
            id=blob_id,
            size=int(head["ContentLength"]),
            mime=str(head.get("ContentType") or "application/octet-stream"),
            uploaded_ms=int(head["LastModified"].timestamp() * 1000),
        )

    @asynccontextmanager
    async def open(
        self, blob_id: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        check_chunk_bytes(chunk_bytes)
        key = self._key(blob_id)
        got = await self._call(
            f"read blob {blob_id}",
            self._client.get_object,
            Bucket=self.bucket,
            Key=key,
            missing=f"no blob {blob_id}",
        )
        body = got["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                chunk: bytes = await self._call(f"read blob {blob_id}", body.read, chunk_bytes)
                if not chunk:
                    return
                yield chunk

        try:
            yield chunks()
        finally:
            body.close()

    async def delete(self, blob_id: str) -> bool:
        key = self._key(blob_id)
        try:
            await self._call(
                f"stat blob {blob_id}", self._client.head_object, Bucket=self.bucket, Key=key
            )
        except NotFound:
            return False
        await self._call(
            f"delete blob {blob_id}", self._client.delete_object, Bucket=self.bucket, Key=key
        )
        return True

    async def ids(self) -> AsyncIterator[str]:
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token is not None:
                args["ContinuationToken"] = token
            page = await self._call("list blobs", self._client.list_objects_v2, **args)
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(self.prefix) :]
                if len(name) == 64 and "/" not in name:
                    yield name
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    async def presigned_url(self, blob_id: str, *, expires_s: int) -> str:
        if isinstance(expires_s, bool) or not isinstance(expires_s, int):
            raise InvalidRequest(f"expires_s must be an int, got {expires_s!r}")
        if not 1 <= expires_s <= MAX_PRESIGN_S:
            raise InvalidRequest(f"expires_s must be within 1..{MAX_PRESIGN_S}, got {expires_s}")
        await self.stat(blob_id)
        url: str = await self._call(
            f"presign blob {blob_id}",
            self._client.generate_presigned_url,
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(blob_id)},
            ExpiresIn=expires_s,
        )
        return url

    async def aclose(self) -> None:
        """Close the client's connection pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._client.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
