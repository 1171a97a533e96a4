"""A MessageStore whose writes can be held back: the History stage running late."""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from chatcore._resource import ClosingContext
from chatcore.model import StoredMessage
from chatcore.store._base import MessageStore


class HeldMessageStore(ClosingContext):
    """Wraps ``inner``; while held, ``append`` waits until :meth:`release`.

    Reads go through at once, so readers see the store as it was before the hold.
    ``waiting`` is set once a write is held up.
    """

    def __init__(self, inner: MessageStore) -> None:
        self.inner = inner
        self._released: anyio.Event | None = None
        self.waiting = anyio.Event()

    def hold(self) -> None:
        self._released = anyio.Event()
        self.waiting = anyio.Event()

    def release(self) -> None:
        if self._released is not None:
            self._released.set()
            self._released = None

    async def __aenter__(self) -> HeldMessageStore:
        await self.inner.__aenter__()
        return self

    async def aclose(self) -> None:
        self.release()
        await self.inner.aclose()

    async def append(self, messages: Sequence[StoredMessage]) -> None:
        released = self._released
        if released is not None:
            self.waiting.set()
            await released.wait()
        await self.inner.append(messages)

    async def replace(self, messages: Sequence[StoredMessage]) -> None:
        await self.inner.replace(messages)

    async def range(
        self,
        chat_id: str,
        *,
        after: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[StoredMessage]:
        return await self.inner.range(chat_id, after=after, before=before, limit=limit)

    async def last_seq(self, chat_id: str) -> int:
        return await self.inner.last_seq(chat_id)

    async def find_client_msg(
        self, chat_id: str, sender: str, client_msg_id: str
    ) -> StoredMessage | None:
        return await self.inner.find_client_msg(chat_id, sender, client_msg_id)
