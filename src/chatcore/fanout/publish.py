"""The I/O half of fanout: look the members up, plan, publish to their gateways.

:class:`Fanout` turns the :class:`~chatcore.fanout.planner.FanoutPlanner`'s plans into
GatewayBus calls: one ConnectionRegistry lookup for every member concerned, then one
``publish_many`` for every payload planned. It does not know the events it carries:
``encode(conn_ids, event)`` makes the bytes one gateway receives (the pipeline passes
:func:`chatcore.pipeline.workers.envelope_bytes`). Given ``combine``, it sends each
gateway one payload per :meth:`Fanout.publish` (up to ``max_payload_bytes``, then
another) instead of one per event: ``combine(payloads)`` joins a gateway's payloads,
in order (the pipeline passes :func:`chatcore.events.join_envelopes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, NamedTuple, TypeVar

from chatcore.bus._base import GatewayBus
from chatcore.errors import InvalidRequest
from chatcore.fanout.planner import FanoutPlanner
from chatcore.model import Connection
from chatcore.registry._base import ConnectionRegistry

__all__ = ["DEFAULT_MAX_PAYLOAD_BYTES", "Fanout", "publish_to_members"]

E = TypeVar("E")

DEFAULT_MAX_PAYLOAD_BYTES = 256 * 1024
"""The most bytes of events :class:`Fanout` joins into one payload for a gateway (a
single larger event still goes alone). Well below Redis's pub/sub output buffer
limits (8 MB for 60 s, 32 MB at once), which disconnect a subscriber."""


class _Plan(NamedTuple):
    targets: list[tuple[str, tuple[str, ...]]]  # (gateway, conn_ids) per payload
    offline: tuple[str, ...]


class Fanout(Generic[E]):
    """Many events to the members of their chats: one registry lookup and one bus call.

    :meth:`add` plans an event against the connections of a :meth:`lookup` made for
    every member concerned up front; :meth:`publish` sends every payload planned so
    far, in ``add`` order, so each gateway sees them in that order. ``encode(conn_ids,
    event)`` makes the payload of ``event`` for the connections ``conn_ids`` of one
    gateway. With ``combine``, :meth:`publish` joins each gateway's payloads into one
    (``combine(payloads)``, in ``add`` order; several if they pass
    ``max_payload_bytes``).
    """

    def __init__(
        self,
        bus: GatewayBus,
        registry: ConnectionRegistry,
        planner: FanoutPlanner,
        encode: Callable[[tuple[str, ...], E], bytes],
        *,
        combine: Callable[[Sequence[bytes]], bytes] | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    ) -> None:
        """Raises InvalidRequest if ``max_payload_bytes`` is below 1."""
        if max_payload_bytes < 1:
            raise InvalidRequest(f"max_payload_bytes must be at least 1, got {max_payload_bytes}")
        self._bus, self._registry, self._planner = bus, registry, planner
        self._encode = encode
        self._combine = combine
        self._max_payload_bytes = max_payload_bytes
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
        if not payloads:
            return
        if self._combine is not None:
            payloads = self._joined(payloads, self._combine)
        await self._bus.publish_many(payloads)

    def _joined(
        self, payloads: list[tuple[str, bytes]], combine: Callable[[Sequence[bytes]], bytes]
    ) -> list[tuple[str, bytes]]:
        """Each gateway's payloads joined, in order, in runs of at most
        ``max_payload_bytes`` (a larger payload makes a run of its own)."""
        runs: dict[str, list[list[bytes]]] = {}
        filled: dict[str, int] = {}
        for gateway, payload in payloads:
            gateway_runs = runs.setdefault(gateway, [[]])
            size = filled.get(gateway, 0) + len(payload)
            if gateway_runs[-1] and size > self._max_payload_bytes:
                gateway_runs.append([])
                size = len(payload)
            gateway_runs[-1].append(payload)
            filled[gateway] = size
        return [(gateway, combine(run)) for gateway, rs in runs.items() for run in rs]


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
