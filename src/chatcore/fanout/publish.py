"""The I/O half of fanout: look the members up, plan, publish to their gateways.

:class:`Fanout` turns the :class:`~chatcore.fanout.planner.FanoutPlanner`'s plans into
GatewayBus calls: one ConnectionRegistry lookup for every member concerned, then one
``publish_many`` for every payload planned. It does not know the events it carries:
``encode(conn_ids, event)`` makes the bytes one gateway receives (the pipeline passes
:func:`chatcore.pipeline.workers.envelope_bytes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, NamedTuple, TypeVar

from chatcore.bus._base import GatewayBus
from chatcore.fanout.planner import FanoutPlanner
from chatcore.model import Connection
from chatcore.registry._base import ConnectionRegistry

__all__ = ["Fanout", "publish_to_members"]

E = TypeVar("E")


class _Plan(NamedTuple):
    targets: list[tuple[str, tuple[str, ...]]]  # (gateway, conn_ids) per payload
    offline: tuple[str, ...]


class Fanout(Generic[E]):
    """Many events to the members of their chats: one registry lookup and one bus call.

    :meth:`add` plans an event against the connections of a :meth:`lookup` made for
    every member concerned up front; :meth:`publish` sends every payload planned so
    far, in ``add`` order, so each gateway sees them in that order. ``encode(conn_ids,
    event)`` makes the payload of ``event`` for the connections ``conn_ids`` of one
    gateway.
    """

    def __init__(
        self,
        bus: GatewayBus,
        registry: ConnectionRegistry,
        planner: FanoutPlanner,
        encode: Callable[[tuple[str, ...], E], bytes],
    ) -> None:
        self._bus, self._registry, self._planner = bus, registry, planner
        self._encode = encode
        self._connections: dict[str, list[Connection]] = {}
        self._plans: dict[tuple[str, ...], _Plan] = {}
        self._payloads: list[tuple[str, bytes]] = []

    async def lookup(
        self, users: Iterable[str], *, skip_device: tuple[str, str] | None = None
    ) -> None:
        """Find the live connections of ``users`` (one round trip), leaving out those
        of ``skip_device`` (user, device), if given."""
        found = await self._registry.lookup(list(dict.fromkeys(users)))
        if skip_device is not None:
            user, device = skip_device
            found = dict(found)
            found[user] = [c for c in found.get(user, ()) if c.device != device]
        self._connections = found
        self._plans.clear()

    def add(self, members: Sequence[str], event: E) -> tuple[str, ...]:
        """Plan ``event`` for ``members`` (all of them looked up); returns who is offline."""
        key = tuple(members)
        plan = self._plans.get(key)
        if plan is None:
            connections = self._connections
            found = {m: connections[m] for m in key if m in connections}
            planned = self._planner.plan(key, found)
            targets = [(b.gateway, tuple(c.conn_id for c in b.conns)) for b in planned.batches]
            plan = self._plans[key] = _Plan(targets, planned.offline)
        for gateway, conn_ids in plan.targets:
            self._payloads.append((gateway, self._encode(conn_ids, event)))
        return plan.offline

    async def publish(self) -> None:
        """Send every payload planned since the last publish (one bus call)."""
        payloads, self._payloads = self._payloads, []
        if payloads:
            await self._bus.publish_many(payloads)


async def publish_to_members(
    bus: GatewayBus,
    registry: ConnectionRegistry,
    planner: FanoutPlanner,
    members: Sequence[str],
    event: E,
    *,
    encode: Callable[[tuple[str, ...], E], bytes],
    skip_device: tuple[str, str] | None = None,
) -> tuple[str, ...]:
    """Send ``event`` to every live device of ``members`` but ``skip_device`` (user,
    device: the one that caused the event, if given); returns who is offline."""
    fanout = Fanout(bus, registry, planner, encode)
    await fanout.lookup(members, skip_device=skip_device)
    offline = fanout.add(members, event)
    await fanout.publish()
    return offline
