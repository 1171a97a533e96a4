"""What only the filesystem backend promises: its layout, no temp file left behind."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatcore.errors import BlobTooLarge, InvalidRequest, Unavailable
from chatcore.media import FilesystemBlobStore, chunks_of

pytestmark = pytest.mark.anyio


async def test_a_blob_is_one_file_named_by_its_id(tmp_path: Path) -> None:
    async with FilesystemBlobStore(tmp_path) as store:
        info = await store.put(chunks_of(b"hello"), max_bytes=10)
    path = tmp_path / "blobs" / info.id[:2] / info.id
    assert path.read_bytes() == b"hello"
    assert info.id == hashlib.sha256(b"hello").hexdigest()
    assert list((tmp_path / "tmp").iterdir()) == []


async def test_failed_puts_leave_no_temp_file(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"half"
        raise OSError("disk gone")

    async with FilesystemBlobStore(tmp_path) as store:
        with pytest.raises(BlobTooLarge):
            await store.put(chunks_of(bytes(100), chunk_bytes=10), max_bytes=50)
        with pytest.raises(InvalidRequest):
            await store.put(chunks_of(b""), max_bytes=50)
        with pytest.raises(Unavailable):
            await store.put(broken(), max_bytes=50)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list((tmp_path / "blobs").iterdir()) == []


async def test_stray_files_are_not_listed(tmp_path: Path) -> None:
    async with FilesystemBlobStore(tmp_path) as store:
        info = await store.put(chunks_of(b"kept"), max_bytes=10)
        (tmp_path / "blobs" / "zz").mkdir()
        (tmp_path / "blobs" / "zz" / "notes.txt").write_text("x")
        (tmp_path / "blobs" / info.id[:2] / ("f" * 64)).write_text("wrong shard")
        assert [b async for b in store.ids()] == [info.id]


def test_a_root_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(Unavailable):
        FilesystemBlobStore(tmp_path / "file" / "media")


@pytest.mark.anyio
async def test_blob_files_and_folders_are_private(tmp_path: Path) -> None:
    import stat

    from chatcore.media import FilesystemBlobStore, chunks_of

    root = tmp_path / "media"
    async with FilesystemBlobStore(root) as store:
        await store.put(chunks_of(b"private bytes"), max_bytes=100)
    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
