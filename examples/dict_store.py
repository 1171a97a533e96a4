"""A MessageStore written outside chatcore, as a third party would: plain dicts, and a file.

It keeps each chat's messages in a dict by seq. Given a ``path``, it also writes
them all to that file (JSON, replaced atomically) after every append and reads them
back on open, so a new instance sees what an earlier one stored. It is an example of
the port, not a store for production: every append rewrites the whole file.

Its tests run chatcore's conformance suite (tests/test_examples_backend.py)::

    class TestDictStore(MessageStoreSuite):
        @pytest.fixture
        def make_store(self):
            async def make():
                return DictMessageStore()
            return make

To run a node on it, put it in the backends::

    backends = Backends.in_memory()
    backends.messages = DictMessageStore(Path("messages.json"))
    async with ChatNode(backends) as node:
        ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import anyio.to_thread
import msgspec

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import StoredMessage

__all__ = ["DictMessageStore"]


class DictMessageStore:
    """A :class:`~chatcore.store.MessageStore` in dicts, optionally kept in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._chats: dict[str, dict[int, StoredMessage]] = {}
        self._closed = False

    async def __aenter__(self) -> Self:
        if self._path is not None and self._path.exists():
            data = await anyio.to_thread.run_sync(self._path.read_bytes)
            for m in msgspec.json.decode(data, type=list[StoredMessage]):
                self._chats.setdefault(m.chat_id, {})[m.seq] = m
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        self._chats = {}

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        self._check_open()
        if any(m.seq < 1 for m in messages):  # checked first: nothing is stored then
            raise InvalidRequest("message seqs start at 1")
        added = False
        for m in messages:
            chat = self._chats.setdefault(m.chat_id, {})
            if m.seq not in chat:  # the first write of a seq wins
                chat[m.seq] = m
                added = True
        if added and self._path is not None:
            await anyio.to_thread.run_sync(self._save, self._path)

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        self._check_open()
        if any(m.seq < 1 for m in messages):
            raise InvalidRequest("message seqs start at 1")
        for m in messages:
            chat = self._chats.setdefault(m.chat_id, {})
            known = chat.get(m.seq)
            if known is None or m.changed_seq > known.changed_seq:  # the newest state wins
                chat[m.seq] = m
        if self._path is not None:
            await anyio.to_thread.run_sync(self._save, self._path)

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        self._check_open()
        if limit < 0:
            raise InvalidRequest("limit must not be negative")
        chat = self._chats.get(chat_id, {})
        seqs = sorted(
            s for s in chat if (after is None or s > after) and (before is None or s < before)
        )
        # After a cursor: the first ones past it. Otherwise: the latest ones.
        chosen = seqs[:limit] if after is not None else seqs[max(0, len(seqs) - limit) :]
        return [chat[s] for s in chosen]

    async def last_seq(self, chat_id: str) -> int:
        self._check_open()
        return max(self._chats.get(chat_id, {}), default=0)

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        self._check_open()
        chat = self._chats.get(chat_id, {})
        found = [
            m for m in chat.values() if m.sender == sender and m.client_msg_id == client_msg_id
        ]
        return min(found, key=lambda m: m.seq, default=None)

    def _save(self, path: Path) -> None:
        everything = [m for chat in self._chats.values() for m in chat.values()]
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(msgspec.json.encode(everything))
        os.replace(temporary, path)

    def _check_open(self) -> None:
        if self._closed:
            raise ChatcoreClosed("the store is closed")
