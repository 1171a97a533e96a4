"""A ``BlobStore`` in a folder: the embedded default, under the node's data folder.

Layout: ``<root>/blobs/<first 2 hex digits>/<id>`` holds each blob's bytes;
``<root>/tmp/`` holds uploads in progress. A put writes a temp file as the chunks
arrive, fsyncs it, renames it atomically to its id's path and fsyncs the folder: a
blob is either whole or absent, even after a crash. A put that fails, is cancelled or
passes its limit deletes its temp file. The MIME type is sniffed again from the
first bytes on ``stat`` (it is a function of the bytes); ``uploaded_ms`` is the file's
mtime, which a second put of the same bytes moves. Temp files of a process that
crashed mid-upload stay in ``tmp/`` (safe to delete when no put runs). Folders are
made 0700 and blob files 0600, like the rest of the data folder.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.to_thread

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed, NotFound, Unavailable
from chatcore.media._base import DEFAULT_CHUNK_BYTES, BlobInfo
from chatcore.media._ingest import Ingest, check_chunk_bytes
from chatcore.media.rules import SNIFF_BYTES, check_blob_id, sniff_mime

__all__ = ["FilesystemBlobStore"]


class FilesystemBlobStore(ClosingContext):
    """Blobs as files under ``root`` (created if missing). ``Unavailable`` on an OS error."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._blobs.mkdir(exist_ok=True, mode=0o700)
            self._tmp.mkdir(exist_ok=True, mode=0o700)
        except OSError as exc:
            raise Unavailable(f"cannot create the blob folder {self.root}: {exc}") from exc
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("FilesystemBlobStore used after aclose()")

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self._blobs / blob_id[:2] / blob_id

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> BlobInfo:
        self._check_open()
        ingest = Ingest(max_bytes)
        temp = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            async with await anyio.open_file(temp, "xb", opener=_private) as file:
                async for chunk in chunks:
                    await file.write(ingest.feed(chunk))
                blob_id, _ = ingest.finish()
                await file.flush()
                await anyio.to_thread.run_sync(os.fsync, file.wrapped.fileno())
            path = self._path(blob_id)
            await anyio.to_thread.run_sync(_install, temp, path)
        except OSError as exc:
            raise Unavailable(f"writing a blob under {self.root} failed: {exc}") from exc
        finally:
            with anyio.CancelScope(shield=True), contextlib.suppress(FileNotFoundError):
                await anyio.Path(temp).unlink()
        return await self.stat(blob_id)

    async def stat(self, blob_id: str) -> BlobInfo:
        self._check_open()
        path = self._path(blob_id)
        try:
            head, st = await anyio.to_thread.run_sync(_head_and_stat, path)
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {blob_id}") from exc
        except OSError as exc:
            raise Unavailable(f"reading blob {blob_id} failed: {exc}") from exc
        return BlobInfo(
            id=blob_id,
            size=st.st_size,
            mime=sniff_mime(head),
            uploaded_ms=st.st_mtime_ns // 1_000_000,
        )

    @asynccontextmanager
    async def open(
        self, blob_id: str, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        self._check_open()
        check_chunk_bytes(chunk_bytes)
        path = self._path(blob_id)
        try:
            file = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {blob_id}") from exc
        except OSError as exc:
            raise Unavailable(f"opening blob {blob_id} failed: {exc}") from exc

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                try:
                    chunk = await file.read(chunk_bytes)
                except OSError as exc:
                    raise Unavailable(f"reading blob {blob_id} failed: {exc}") from exc
                if not chunk:
                    return
                yield chunk

        async with file:
            yield chunks()

    async def delete(self, blob_id: str) -> bool:
        self._check_open()
        path = self._path(blob_id)
        try:
            await anyio.Path(path).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise Unavailable(f"deleting blob {blob_id} failed: {exc}") from exc
        return True

    async def ids(self) -> AsyncIterator[str]:
        self._check_open()
        try:
            shards = await anyio.to_thread.run_sync(_list, self._blobs)
            for shard in shards:
                for name in await anyio.to_thread.run_sync(_list, shard):
                    if len(name.name) == 64 and name.name.startswith(shard.name):
                        yield name.name
        except OSError as exc:
            raise Unavailable(f"listing the blobs under {self.root} failed: {exc}") from exc

    async def aclose(self) -> None:
        """Nothing to release (files are opened per call). Idempotent."""
        self._closed = True


def _install(temp: Path, path: Path) -> None:
    """Rename ``temp`` to ``path`` (or, if the same bytes are there, touch it) durably."""
    path.parent.mkdir(exist_ok=True, mode=0o700)
    if path.exists():
        os.utime(path)
        return
    os.replace(temp, path)
    _fsync_dir(path.parent)


def _private(path: str, flags: int) -> int:
    """Open a new blob file readable by this user only (0600), like the data folder."""
    return os.open(path, flags, 0o600)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - some filesystems refuse fsync on folders
        if exc.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _head_and_stat(path: Path) -> tuple[bytes, os.stat_result]:
    with path.open("rb") as file:
        return file.read(SNIFF_BYTES), os.fstat(file.fileno())


def _list(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except FileNotFoundError:
        return []
