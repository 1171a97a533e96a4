"""The base of the in-process adapters: an async context manager that refuses use after close."""

from __future__ import annotations

import anyio.lowlevel

from chatcore._resource import ClosingContext
from chatcore.errors import ChatcoreClosed

__all__ = ["MemoryAdapter"]


class MemoryAdapter(ClosingContext):
    """An adapter whose state lives in this process; its calls raise ChatcoreClosed after close.

    Subclasses start each call with ``await self._checkpoint()`` and free what they
    hold in ``_release()``.
    """

    _closed = False

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
