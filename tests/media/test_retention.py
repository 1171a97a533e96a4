"""The retention rule: unreferenced blobs go once past the grace period."""

from __future__ import annotations

import hashlib

import pytest

from chatcore.errors import InvalidRequest
from chatcore.media import BlobInfo, MemoryBlobStore, chunks_of, sweep, unreferenced


def blob(name: str, uploaded_ms: int) -> BlobInfo:
    return BlobInfo(hashlib.sha256(name.encode()).hexdigest(), 10, "image/png", uploaded_ms)


def test_unreferenced_blobs_past_the_grace_period_are_picked() -> None:
    sent, old, fresh, edge = blob("sent", 0), blob("old", 0), blob("fresh", 950), blob("edge", 900)
    picked = unreferenced([sent, old, fresh, edge], {sent.id}, now_ms=1000, grace_ms=100)
    assert picked == [old.id]


def test_nothing_referenced_and_no_grace_picks_everything_older_than_now() -> None:
    blobs = [blob("a", 0), blob("b", 1000)]
    assert unreferenced(blobs, set(), now_ms=1000, grace_ms=0) == [blobs[0].id]


def test_a_negative_grace_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        unreferenced([], set(), now_ms=0, grace_ms=-1)


@pytest.mark.anyio
async def test_sweep_deletes_what_the_rule_picks() -> None:
    now = [1000]
    async with MemoryBlobStore(clock=lambda: now[0]) as store:
        kept = await store.put(chunks_of(b"in a message"), max_bytes=100)
        gone = await store.put(chunks_of(b"never sent"), max_bytes=100)
        now[0] = 5000
        fresh = await store.put(chunks_of(b"just uploaded"), max_bytes=100)
        now[0] = 5500
        assert await sweep(store, {kept.id}, grace_ms=1000, clock=lambda: now[0]) == [gone.id]
        assert {b async for b in store.ids()} == {kept.id, fresh.id}
        with pytest.raises(InvalidRequest):
            await sweep(store, set(), grace_ms=-5)


@pytest.mark.anyio
async def test_sweep_unreferenced_reads_the_ledger_and_forgets_deleted_uploads() -> None:
    from chatcore.media import sweep_unreferenced
    from chatcore.uploads import MemoryUploadLedger, Upload

    now = [1000]
    async with MemoryBlobStore(clock=lambda: now[0]) as store, MemoryUploadLedger() as ledger:
        sent = await store.put(chunks_of(b"in a message"), max_bytes=100)
        thumb = await store.put(chunks_of(b"its thumbnail"), max_bytes=100)
        gone = await store.put(chunks_of(b"never sent"), max_bytes=100)
        for info in (sent, gone):
            record = Upload(
                blob=info.id, user="alice", kind="file", size=info.size, mime=info.mime,
                uploaded_ms=now[0],
            )  # fmt: skip
            await ledger.record(record)
        await ledger.reference([sent.id, thumb.id])
        now[0] = 5000
        fresh = await store.put(chunks_of(b"just uploaded"), max_bytes=100)
        now[0] = 5500
        clock = lambda: now[0]  # noqa: E731
        assert await sweep_unreferenced(store, ledger, grace_ms=1000, clock=clock) == [gone.id]
        assert {b async for b in store.ids()} == {sent.id, thumb.id, fresh.id}
        assert await ledger.get("alice", gone.id) is None
        assert await ledger.get("alice", sent.id) is not None
        assert await sweep_unreferenced(store, ledger, grace_ms=1000, clock=clock) == []
        with pytest.raises(InvalidRequest):
            await sweep_unreferenced(store, ledger, grace_ms=-5)
