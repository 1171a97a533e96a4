"""The base of the in-process adapters: an async context manager that refuses use after close."""

from __future__ import annotations

from types import TracebackType
from typing import Self

import anyio.lowlevel

from chatcore.errors import ChatcoreClosed

__all__ = ["MemoryAdapter"]


class MemoryAdapter:
    """An adapter whose state lives in this process; its calls raise ChatcoreClosed after close.

    Subclasses start each call with ``await self._checkpoint()`` and free what they
    hold in ``_release()``.
    """

    _closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release what the adapter holds; later calls raise ChatcoreClosed. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def _release(self) -> None:
        """Free data and end subscriptions; called once, by the first ``aclose()``."""

    async def _checkpoint(self) -> None:
        """Let other tasks run; raises ChatcoreClosed after ``aclose()``."""
        if self._closed:
            raise ChatcoreClosed(f"{type(self).__name__} used after aclose()")
        await anyio.lowlevel.checkpoint()
