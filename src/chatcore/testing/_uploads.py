"""``UploadLedger`` conformance: what every backend of the port must do."""

from __future__ import annotations

import hashlib
import uuid

import msgspec
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.testing._backend import StoreEnv, StoreSuite
from chatcore.uploads._base import Upload, UploadLedger

__all__ = ["UploadLedgerSuite"]


def _blob(seed: str) -> str:
    return hashlib.sha256(f"{seed}-{uuid.uuid4()}".encode()).hexdigest()


def _upload(user: str, blob: str, **changes: object) -> Upload:
    fields: dict[str, object] = {
        "blob": blob,
        "user": user,
        "kind": "image",
        "size": 1234,
        "mime": "image/png",
        "uploaded_ms": 1_700_000_000_000,
        "thumbnail": _blob("thumb"),
    }
    fields.update(changes)
    return Upload(**fields)  # type: ignore[arg-type]


class UploadLedgerSuite(StoreSuite[UploadLedger]):
    """The ``UploadLedger`` conformance suite. Subclass it as ``Test...`` and override
    ``make_store`` (new instances over this test's storage); set ``durable`` for a
    backend whose second instance sees what the first recorded."""

    async def test_a_record_is_read_back_for_its_user_only(self, store: UploadLedger) -> None:
        blob = _blob("a")
        upload = _upload("alice", blob)
        assert await store.get("alice", blob) is None
        await store.record(upload)
        assert await store.get("alice", blob) == upload
        assert await store.get("bob", blob) is None
        assert await store.get("alice", _blob("other")) is None

    async def test_two_uploaders_of_one_blob_have_a_record_each(self, store: UploadLedger) -> None:
        blob = _blob("shared")
        await store.record(_upload("alice", blob))
        await store.record(_upload("bob", blob, kind="file", thumbnail=None))
        bob = await store.get("bob", blob)
        assert bob is not None
        assert bob.kind == "file"
        assert bob.thumbnail is None
        assert await store.forget(blob) == 2
        assert await store.get("alice", blob) is None
        assert await store.get("bob", blob) is None
        assert await store.forget(blob) == 0

    async def test_a_second_record_replaces_the_first(self, store: UploadLedger) -> None:
        blob = _blob("again")
        await store.record(_upload("alice", blob, uploaded_ms=1))
        await store.record(_upload("alice", blob, uploaded_ms=2))
        again = await store.get("alice", blob)
        assert again is not None
        assert again.uploaded_ms == 2
        assert await store.forget(blob) == 1

    async def test_forget_leaves_other_blobs(self, store: UploadLedger) -> None:
        keep, drop = _blob("keep"), _blob("drop")
        await store.record(_upload("alice", keep))
        await store.record(_upload("alice", drop))
        assert await store.forget(drop) == 1
        assert await store.get("alice", keep) is not None

    @pytest.mark.parametrize(
        "changes",
        [{"blob": "not-a-blob"}, {"blob": "A" * 64}, {"user": ""}, {"size": 0}, {"thumbnail": "x"}],
        ids=["bad-id", "upper-hex", "no-user", "empty", "bad-thumbnail"],
    )
    async def test_a_bad_record_is_refused_and_nothing_kept(
        self, store: UploadLedger, changes: dict[str, object]
    ) -> None:
        upload = msgspec.structs.replace(_upload("alice", _blob("bad")), **changes)
        with pytest.raises(InvalidRequest):
            await store.record(upload)
        assert await store.get(upload.user, upload.blob) is None

    async def test_references_are_kept_apart_from_records(self, store: UploadLedger) -> None:
        used, unused, thumb = _blob("used"), _blob("unused"), _blob("thumb")
        await store.record(_upload("alice", used))
        assert await store.referenced([used, unused]) == set()
        await store.reference([used, thumb, used])
        await store.reference([])
        assert await store.referenced([used, unused, thumb]) == {used, thumb}
        assert await store.referenced([]) == set()
        await store.forget(used)
        assert await store.referenced([used]) == {used}

    async def test_bad_ids_are_simply_unknown(self, store: UploadLedger) -> None:
        assert await store.get("alice", "../../etc/passwd") is None
        assert await store.forget("file:///etc/passwd") == 0

    async def test_a_durable_backend_keeps_records(self, env: StoreEnv[UploadLedger]) -> None:
        if not env.durable:
            pytest.skip("not a durable backend")
        blob = _blob("durable")
        first = await env.open()
        await first.record(_upload("alice", blob))
        await first.aclose()
        second = await env.open()
        kept = await second.get("alice", blob)
        assert kept is not None
        assert (kept.blob, kept.user, kept.size) == (blob, "alice", 1234)

    async def test_closed_ledger_refuses(self, env: StoreEnv[UploadLedger]) -> None:
        ledger = await env.open()
        await ledger.aclose()
        await ledger.aclose()
        with pytest.raises(ChatcoreClosed):
            await ledger.get("alice", _blob("closed"))
