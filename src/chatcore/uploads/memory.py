"""``UploadLedger`` in this process's memory (single node only; lost on restart)."""

from __future__ import annotations

from collections.abc import Sequence

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed
from chatcore.uploads._base import Upload
from chatcore.uploads._rules import check_upload

__all__ = ["MemoryUploadLedger"]


class MemoryUploadLedger(ClosingContext):
    """Upload records in a dict, by blob then user."""

    def __init__(self) -> None:
        self._by_blob: dict[str, dict[str, Upload]] = {}
        self._referenced: set[str] = set()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("MemoryUploadLedger used after aclose()")

    async def record(self, upload: Upload) -> None:
        self._check_open()
        check_upload(upload)
        self._by_blob.setdefault(upload.blob, {})[upload.user] = upload

    async def get(self, user: str, blob: str) -> Upload | None:
        self._check_open()
        return self._by_blob.get(blob, {}).get(user)

    async def forget(self, blob: str) -> int:
        self._check_open()
        return len(self._by_blob.pop(blob, {}))

    async def reference(self, blobs: Sequence[str]) -> None:
        self._check_open()
        self._referenced.update(blobs)

    async def referenced(self, blobs: Sequence[str]) -> set[str]:
        self._check_open()
        return self._referenced.intersection(blobs)

    async def aclose(self) -> None:
        self._closed = True
