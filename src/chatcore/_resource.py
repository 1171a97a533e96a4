"""The shape every adapter shares: an async context manager with an idempotent aclose()."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

__all__ = ["AsyncResource", "ClosingContext"]


class AsyncResource(Protocol):
    """Opened with ``async with`` (or used directly), released by ``aclose()``."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def aclose(self) -> None:
        """Release connections and files. Idempotent."""
        ...


class ClosingContext:
    """``async with`` for an adapter: entering gives the adapter, leaving calls ``aclose()``."""

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
        raise NotImplementedError
