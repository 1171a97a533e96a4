"""A deterministic event loop: virtual time, and tasks that hash in creation order.

The simulation runs on asyncio (through anyio) with two changes that make a run a
pure function of its seed:

* **Virtual time.** :class:`VirtualClock` is the loop's clock. When every task waits,
  the loop's selector does not block: it moves the clock to the next timer at once.
  Nothing in the simulation touches a socket, so a selector that never reports I/O
  loses nothing. :func:`patched_wall_clock` makes ``time.time()`` and
  ``time.time_ns()`` read the same virtual clock (plus a settable offset: the
  simulation's clock jumps), so Snowflake ids, record timestamps and the dedupe
  window all run on it.
* **Deterministic task order.** asyncio runs ready callbacks first in, first out, so
  the order is fixed once nothing depends on memory addresses. anyio keeps a task
  group's tasks in a ``set``, and a task's default hash is its address: cancelling a
  group would wake its tasks in an order that differs from run to run. The loop's
  tasks (:class:`SimTask`) hash by a counter instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import selectors
import time
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any

__all__ = [
    "SimDeadlock",
    "SimLoop",
    "SimTask",
    "VirtualClock",
    "ordered_cancel_scopes",
    "patched_wall_clock",
]

EPOCH_NS = 1_800_000_000 * 1_000_000_000
"""Where virtual wall time starts (2027-01-15): a fixed, realistic Unix time."""


class SimDeadlock(RuntimeError):
    """Every task waits and no timer is due: the simulation can never move again."""


class VirtualClock:
    """Seconds since the start of the run; only the loop moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.wall_offset_ms = 0
        """Added to the wall clock (not to the loop's clock): the injected clock jumps."""

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wall_ns(self) -> int:
        return EPOCH_NS + int(self.now * 1e9) + self.wall_offset_ms * 1_000_000


class _VirtualSelector(selectors.BaseSelector):
    """Never reports I/O; a wait for ``timeout`` seconds moves the clock by that much."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._keys: dict[int, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        return self._keys.pop(fd)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise SimDeadlock("every task waits for another and no timer is due")
        if timeout > 0:
            self._clock.advance(timeout)
        return []

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return dict(self._keys)

    def close(self) -> None:
        self._keys.clear()


class SimTask(asyncio.Task):  # type: ignore[type-arg]
    """A task whose hash is its creation number, so sets of tasks iterate the same way."""

    _counter = itertools.count()

    def __init__(self, coro: Coroutine[Any, Any, Any], **kwargs: Any) -> None:
        self.sim_number = next(SimTask._counter)  # before __init__, which hashes the task
        super().__init__(coro, **kwargs)

    def __hash__(self) -> int:
        return self.sim_number


class SimLoop(asyncio.SelectorEventLoop):
    """An event loop on a :class:`VirtualClock` that creates :class:`SimTask` tasks."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__(selector=_VirtualSelector(clock))
        self.clock = clock
        SimTask._counter = itertools.count()
        self.set_task_factory(_task_factory)

    def time(self) -> float:
        return self.clock.now


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Future[Any]:
    return SimTask(coro, loop=loop, **kwargs)


class _OrderedSet(dict[Any, None]):
    """The part of ``set`` anyio uses for a cancel scope's children, in insertion order."""

    def add(self, item: Any) -> None:
        self[item] = None

    def remove(self, item: Any) -> None:
        del self[item]

    def discard(self, item: Any) -> None:
        self.pop(item, None)


@contextlib.contextmanager
def ordered_cancel_scopes() -> Iterator[None]:
    """Make anyio's asyncio cancel scopes keep their child scopes in insertion order.

    A scope delivers cancellation to its children by iterating a ``set`` of them, whose
    order follows memory addresses: after other work in the same process, the same
    seed would wake tasks in another order.
    """
    from anyio._backends import _asyncio

    scope = _asyncio.CancelScope
    init = scope.__init__

    def ordered_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._child_scopes = _OrderedSet()

    scope.__init__ = ordered_init  # type: ignore[method-assign]
    try:
        yield
    finally:
        scope.__init__ = init  # type: ignore[method-assign]


@contextlib.contextmanager
def patched_wall_clock(clock: VirtualClock) -> Iterator[None]:
    """Make ``time.time()`` and ``time.time_ns()`` read ``clock`` while inside."""
    saved = time.time, time.time_ns
    time.time_ns = clock.wall_ns
    time.time = lambda: clock.wall_ns() / 1e9
    try:
        yield
    finally:
        time.time, time.time_ns = saved
