"""The ConnectionRegistry port: which gateway holds which device connection of a user."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from chatcore._resource import AsyncResource
from chatcore.model import Connection

__all__ = ["ConnectionRegistry"]


class ConnectionRegistry(AsyncResource, Protocol):
    async def register(self, conn: Connection, *, ttl_s: float) -> None:
        """Record a live connection; it disappears after ``ttl_s`` unless registered again."""
        ...

    async def register_many(self, conns: Sequence[Connection], *, ttl_s: float) -> None:
        """:meth:`register` for each of ``conns``, in as few round trips as the backend
        allows (a gateway's heartbeat of all its connections)."""
        ...

    async def unregister(self, conn: Connection) -> None:
        """Forget a connection (no error if unknown)."""
        ...

    async def lookup(self, users: Sequence[str]) -> dict[str, list[Connection]]:
        """Live connections of many users in one call (users with none are absent).

        The order of a user's connections is unspecified.
        """
        ...

    async def drop_gateway(self, gateway: str) -> None:
        """Forget every connection of a gateway that shut down."""
        ...
