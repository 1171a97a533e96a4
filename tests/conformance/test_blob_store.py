"""The built-in ``BlobStore`` backends run ``chatcore.testing.BlobStoreSuite``."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from chatcore.media import BlobStore, FilesystemBlobStore, MemoryBlobStore
from chatcore.media.s3 import S3BlobStore
from chatcore.testing import BlobStoreSuite
from chatcore.testing._backend import Make
from tests.services import S3_ACCESS_KEY, S3_BUCKET, S3_ENDPOINT, S3_SECRET_KEY, require, unique


class TestMemory(BlobStoreSuite):
    @pytest.fixture
    def make_store(self) -> Make[BlobStore]:
        async def make() -> BlobStore:
            return MemoryBlobStore()

        return make


class TestFilesystem(BlobStoreSuite):
    durable: ClassVar[bool] = True

    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Make[BlobStore]:
        async def make() -> BlobStore:
            return FilesystemBlobStore(tmp_path / "media")

        return make


@pytest.mark.services
class TestS3(BlobStoreSuite):
    durable: ClassVar[bool] = True

    @pytest.fixture
    def make_store(self) -> Make[BlobStore]:
        require("s3proxy")
        prefix = unique("test/") + "/"

        async def make() -> BlobStore:
            return S3BlobStore(
                S3_BUCKET,
                endpoint_url=S3_ENDPOINT,
                access_key=S3_ACCESS_KEY,
                secret_key=S3_SECRET_KEY,
                prefix=prefix,
                create_bucket=True,
            )

        return make
