"""Uploads: the ledger of which user uploaded which blob (the ``UploadLedger`` port).

Core: needs no extra. The port is in ``_base``; its backends are siblings: ``memory``,
``sqlite`` (the embedded default) and ``redis`` (imported by module name, it needs the
``redis`` extra).
"""

from chatcore.uploads._base import Upload, UploadKind, UploadLedger
from chatcore.uploads.memory import MemoryUploadLedger
from chatcore.uploads.sqlite import SqliteUploadLedger

__all__ = ["MemoryUploadLedger", "SqliteUploadLedger", "Upload", "UploadKind", "UploadLedger"]
