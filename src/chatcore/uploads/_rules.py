"""What every ``UploadLedger`` backend checks before it records."""

from __future__ import annotations

import re

from chatcore.errors import InvalidRequest
from chatcore.uploads._base import Upload

__all__ = ["check_upload", "is_blob_id"]

_BLOB_ID = re.compile(r"[0-9a-f]{64}")


def is_blob_id(value: object) -> bool:
    """Whether ``value`` is a blob id: 64 lowercase hex digits."""
    return isinstance(value, str) and _BLOB_ID.fullmatch(value) is not None


def check_upload(upload: Upload) -> Upload:
    """``upload`` if it can be recorded, else ``InvalidRequest``."""
    if not is_blob_id(upload.blob):
        raise InvalidRequest(f"not a blob id (64 lowercase hex digits): {upload.blob!r:.80}")
    if upload.thumbnail is not None and not is_blob_id(upload.thumbnail):
        raise InvalidRequest(f"not a blob id: {upload.thumbnail!r:.80}")
    if not upload.user:
        raise InvalidRequest("an upload needs a user")
    if upload.size < 1:
        raise InvalidRequest(f"an upload holds at least one byte, got {upload.size}")
    return upload
