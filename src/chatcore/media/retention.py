"""Which blobs to delete: those no message refers to, once past a grace period.

:func:`unreferenced` is pure (the clock and the referenced set are passed in). A blob
is kept while a message refers to it (a thumbnail counts as referenced when its
message lists it) and for ``grace_ms`` after its last put, so that an upload is not
swept between its upload and the message that will refer to it. :func:`sweep` applies
the rule to a store; :func:`sweep_unreferenced` is the job a server runs periodically:
the referenced set is what the :class:`~chatcore.uploads.UploadLedger` marked (the
Router marks a message's blobs before it appends the message), and the upload records
of a deleted blob are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from chatcore._clock import wall_ms
from chatcore.errors import InvalidRequest, NotFound
from chatcore.media._base import BlobInfo, BlobStore
from chatcore.uploads import UploadLedger

__all__ = ["DEFAULT_GRACE_MS", "sweep", "sweep_unreferenced", "unreferenced"]

DEFAULT_GRACE_MS = 24 * 3600 * 1000
"""A day: an upload not yet sent in a message is kept at least this long."""


def unreferenced(
    blobs: Iterable[BlobInfo],
    referenced: Collection[str],
    *,
    now_ms: int,
    grace_ms: int = DEFAULT_GRACE_MS,
) -> list[str]:
    """The ids among ``blobs`` to delete: not in ``referenced`` and put over ``grace_ms`` ago.

    ``InvalidRequest`` for a negative ``grace_ms``.
    """
    if grace_ms < 0:
        raise InvalidRequest(f"grace_ms may not be negative, got {grace_ms}")
    return [b.id for b in blobs if b.id not in referenced and now_ms - b.uploaded_ms > grace_ms]


async def sweep(
    store: BlobStore,
    referenced: Collection[str],
    *,
    grace_ms: int = DEFAULT_GRACE_MS,
    clock: Callable[[], int] = wall_ms,
) -> list[str]:
    """Delete the blobs of ``store`` that :func:`unreferenced` picks; their ids.

    ``referenced`` must be read *after* the listing starts for a message sent meanwhile
    to be seen; the grace period covers uploads that are not yet in a message.
    """
    if grace_ms < 0:
        raise InvalidRequest(f"grace_ms may not be negative, got {grace_ms}")
    deleted = []
    async for blob_id in store.ids():
        if blob_id in referenced:
            continue
        try:
            info = await store.stat(blob_id)
        except NotFound:
            continue
        for victim in unreferenced([info], referenced, now_ms=clock(), grace_ms=grace_ms):
            if await store.delete(victim):
                deleted.append(victim)
    return deleted


async def sweep_unreferenced(
    store: BlobStore,
    ledger: UploadLedger,
    *,
    grace_ms: int = DEFAULT_GRACE_MS,
    clock: Callable[[], int] = wall_ms,
) -> list[str]:
    """Delete the blobs of ``store`` past ``grace_ms`` that no message referenced (as
    ``ledger`` marked them) and forget their upload records; the deleted ids.

    A blob attached by a message at the very moment the sweep deletes it (over a day
    after its upload, by default) is lost; the message then has a dead link.
    Raises ``InvalidRequest`` for a negative ``grace_ms``; the backends' errors.
    """
    if grace_ms < 0:
        raise InvalidRequest(f"grace_ms may not be negative, got {grace_ms}")
    deleted = []
    async for blob_id in store.ids():
        try:
            info = await store.stat(blob_id)
        except NotFound:
            continue
        if not unreferenced([info], (), now_ms=clock(), grace_ms=grace_ms):
            continue
        if await ledger.referenced([blob_id]):
            continue
        if await store.delete(blob_id):
            deleted.append(blob_id)
        await ledger.forget(blob_id)
    return deleted
