"""PresenceTracker: one gateway process's side of presence, over a ``PresenceStore``.

How this works: the process's devices :meth:`~PresenceTracker.arrive` (touch) and
:meth:`~PresenceTracker.depart` (leave once the last local connection of that device
goes). While :meth:`~PresenceTracker.run` runs, every ``heartbeat_s`` it touches each
local device again, so its entry lives ``ttl_s`` past the last beat (a process that
dies without saying goodbye fades out after the TTL), then expires what other
processes left behind. Watchers (a gateway's connections) name the users whose
changes they want; ``run`` hands each change from the store to a ``deliver`` callback
with the watchers of that user. Timings come from :class:`~chatcore.presence.rules.PresenceRules`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

from chatcore._clock import wall_ms
from chatcore.model import PresenceState
from chatcore.presence._base import PresenceStore
from chatcore.presence.rules import PresenceRules
from chatcore.telemetry import NO_TELEMETRY, Telemetry, Timer

__all__ = ["PresenceTracker"]

W = TypeVar("W", bound=Hashable)


class PresenceTracker(Generic[W]):
    """Keeps this process's devices present, and tells watchers about users' changes.

    ``rules`` gives ``ttl_s`` (60) and ``heartbeat_s`` (30); ``clock`` is wall time in ms.
    Watchers are any hashable objects (the hub uses its connections).
    """

    def __init__(
        self,
        store: PresenceStore,
        *,
        rules: PresenceRules | None = None,
        clock: Callable[[], int] = wall_ms,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._store = store
        self._telemetry = telemetry
        self.rules = rules or PresenceRules()
        self._clock = clock
        self._devices: Counter[tuple[str, str]] = Counter()  # local connections per device
        self._watchers: dict[str, set[W]] = {}
        self._watching: dict[W, set[str]] = {}

    @property
    def ttl_s(self) -> float:
        return self.rules.ttl_ms / 1000

    @property
    def heartbeat_s(self) -> float:
        return self.rules.heartbeat_ms / 1000

    async def arrive(self, user: str, device: str) -> None:
        """A local connection of ``device`` opened: the device is online for ``ttl_s``."""
        self._devices[(user, device)] += 1
        timer = Timer()
        await self._store.touch(user, device, ttl_s=self.ttl_s, now_ms=self._clock())
        self._telemetry.presence_update(timer.seconds)

    async def depart(self, user: str, device: str) -> None:
        """A local connection of ``device`` closed; the device leaves with its last one."""
        key = (user, device)
        if self._devices[key] > 1:
            self._devices[key] -= 1
            return
        del self._devices[key]
        timer = Timer()
        await self._store.leave(user, device, now_ms=self._clock())
        self._telemetry.presence_update(timer.seconds)

    async def heartbeat(self) -> None:
        """Touch every local device again, then expire devices nobody refreshed."""
        now = self._clock()
        devices = list(self._devices)
        if devices:  # one call for every device: pipelined by the store
            timer = Timer()
            await self._store.touch_many(devices, ttl_s=self.ttl_s, now_ms=now)
            self._telemetry.presence_update(timer.seconds)
        await self._store.expire(now_ms=now)

    async def run(
        self,
        deliver: Callable[[PresenceState, list[W]], Awaitable[None]],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Heartbeat every ``heartbeat_s`` and hand each change to ``deliver(state,
        watchers)`` (only for users someone watches), until cancelled."""
        async with self._store.changes() as changes, anyio.create_task_group() as tg:
            tg.start_soon(self._beat)
            task_status.started()
            async for state in changes:
                watchers = self._watchers.get(state.user)
                if watchers:
                    await deliver(state, list(watchers))

    async def _beat(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_s)
            await self.heartbeat()

    def watch(self, watcher: W, users: Iterable[str]) -> None:
        """Send ``watcher`` the changes of ``users`` from now on."""
        watched = self._watching.setdefault(watcher, set())
        for user in users:
            watched.add(user)
            self._watchers.setdefault(user, set()).add(watcher)

    def unwatch(self, watcher: W, users: Iterable[str]) -> None:
        """Stop sending ``watcher`` the changes of ``users``."""
        watched = self._watching.get(watcher, set())
        for user in users:
            watched.discard(user)
            self._drop(user, watcher)
        if not watched:
            self._watching.pop(watcher, None)

    def watched_by(self, watcher: W) -> frozenset[str]:
        """The users whose changes ``watcher`` is sent."""
        return frozenset(self._watching.get(watcher, ()))

    def forget(self, watcher: W) -> None:
        """Stop sending ``watcher`` anything (it closed)."""
        for user in self._watching.pop(watcher, ()):
            self._drop(user, watcher)

    def _drop(self, user: str, watcher: W) -> None:
        watchers = self._watchers.get(user)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[user]
