"""The fault injector: a proxy around every port a simulated process uses.

Each simulated process gets its own :class:`~chatcore.backends.Backends` made of
proxies over the one shared set of memory adapters (the "cluster's" durable state).
Every awaited call of a port goes through :meth:`Injector.before` and
:meth:`Injector.after`, where the world's one seeded RNG decides what happens:

* before the call: nothing, a delay (virtual time), an error (``Unavailable``, the
  call had no effect), or a crash of the whole process;
* after the call: nothing, a lost answer (``TimeoutError`` although the effect
  happened), or a crash of the process (the effect happened, nobody saw it);
* on the bus: a publish dropped, or delivered twice;
* anywhere: a jump of the wall clock.

A crashed process's calls fail from then on (:class:`ProcessCrashed`); its consumer
group members leave only after a session timeout, as on Kafka.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import anyio

from chatcore.errors import Unavailable
from chatcore.sim._loop import VirtualClock

__all__ = ["Faults", "Injector", "ProcessCrashed", "proxy_port"]


class World(Protocol):
    """What the injector needs of the world (:class:`chatcore.sim._world.World`)."""

    rng: random.Random
    clock: VirtualClock
    chaos: bool
    session_timeout_s: float
    wan_rtt_s: float

    @property
    def faults(self) -> Faults: ...
    @property
    def injector(self) -> Injector: ...
    def note(self, line: str) -> None: ...
    def later(self, delay_s: float, fn: Callable[[], Awaitable[Any]]) -> None: ...
    def region_of(self, gateway: str) -> str: ...


class Process(Protocol):
    """What the injector needs of a simulated process."""

    name: str
    region: str
    rtt_s: float
    alive: bool
    generation: int

    @property
    def world(self) -> World: ...
    def crash(self) -> None: ...


class ProcessCrashed(Unavailable):
    """The simulated process this call went to has crashed."""


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Per port call, the chance of each fault (0 turns one off)."""

    crash: float = 0.002
    """The process dies at this await (half before the call's effect, half after)."""
    error: float = 0.02
    """The call fails with ``Unavailable`` and has no effect."""
    lost_ack: float = 0.01
    """The call takes effect but its caller gets ``TimeoutError``."""
    delay: float = 0.05
    """The call first waits up to ``max_delay_s`` of virtual time."""
    max_delay_s: float = 0.5
    """The longest injected delay."""
    drop: float = 0.02
    """A bus publish is lost (the bus is at-most-once)."""
    duplicate: float = 0.02
    """A bus publish is delivered twice."""
    kill_every_s: float = 10.0
    """On average, how often (virtual seconds) a random process is killed wherever its
    tasks are, between port calls too (0: never)."""
    clock_jump: float = 0.002
    """The wall clock jumps by up to ``max_jump_ms`` either way."""
    max_jump_ms: int = 5_000
    """The largest clock jump (within the Snowflake generator's 10 s tolerance of a clock
    that steps back; a larger one is refused, and retried by the client)."""

    @classmethod
    def none(cls) -> Faults:
        return cls(
            crash=0,
            error=0,
            lost_ack=0,
            delay=0,
            drop=0,
            duplicate=0,
            kill_every_s=0,
            clock_jump=0,
        )


NO_FAULTS = Faults.none()


class Injector:
    """Decides, with the world's RNG, what each port call of a process suffers."""

    def __init__(self, world: World) -> None:
        self.world = world

    @property
    def faults(self) -> Faults:
        return self.world.faults if self.world.chaos else NO_FAULTS

    def check(self, proc: Process, generation: int) -> None:
        if not proc.alive or proc.generation != generation:
            raise ProcessCrashed(f"{proc.name} (run {generation}) has crashed")

    def crash(self, proc: Process, label: str) -> None:
        self.world.note(f"CRASH {proc.name} at {label}")
        proc.crash()
        raise ProcessCrashed(f"{proc.name} crashed at {label}")

    async def before(self, proc: Process, generation: int, label: str) -> None:
        self.check(proc, generation)
        if proc.rtt_s:  # a process in another region than the backends: the WAN
            await anyio.sleep(proc.rtt_s)
            self.check(proc, generation)
        f = self.faults
        if f is NO_FAULTS:
            return
        rng = self.world.rng
        if f.clock_jump and rng.random() < f.clock_jump:
            jump = rng.randint(-f.max_jump_ms, f.max_jump_ms)
            self.world.clock.wall_offset_ms += jump
            self.world.note(f"clock jump {jump:+d} ms")
        x = rng.random()
        if x < f.crash / 2:
            self.crash(proc, f"{label} (before)")
        x -= f.crash / 2
        if x < f.error:
            self.world.note(f"{proc.name} {label}: error")
            raise Unavailable(f"simulated failure of {label}")
        x -= f.error
        if x < f.delay:
            delay = round(rng.uniform(0, f.max_delay_s), 4)
            self.world.note(f"{proc.name} {label}: delay {delay}")
            await anyio.sleep(delay)
            self.check(proc, generation)

    def after(self, proc: Process, generation: int, label: str) -> None:
        self.check(proc, generation)
        f = self.faults
        if f is NO_FAULTS:
            return
        x = self.world.rng.random()
        if x < f.crash / 2:
            self.crash(proc, f"{label} (after)")
        x -= f.crash / 2
        if x < f.lost_ack:
            self.world.note(f"{proc.name} {label}: answer lost")
            raise TimeoutError(f"simulated lost answer of {label}")

    def bus_fate(self) -> str:
        """``"send"``, ``"drop"`` or ``"twice"`` for one bus publish."""
        f = self.faults
        if f is NO_FAULTS:
            return "send"
        x = self.world.rng.random()
        if x < f.drop:
            return "drop"
        if x < f.drop + f.duplicate:
            return "twice"
        return "send"


class _Port:
    """A port of one process: every coroutine method goes through the injector.

    Entering and closing it do nothing: the shared adapter outlives the process.
    """

    def __init__(self, target: Any, name: str, proc: Process, generation: int) -> None:
        self._target = target
        self._name = name
        self._proc = proc
        self._generation = generation
        self._injector = proc.world.injector

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._target, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        label = f"{self._name}.{attr}"
        injector, proc, generation = self._injector, self._proc, self._generation

        async def call(*args: Any, **kwargs: Any) -> Any:
            await injector.before(proc, generation, label)
            result = await value(*args, **kwargs)
            injector.after(proc, generation, label)
            return result

        return call


class _Bus(_Port):
    """The bus: publishes may also be dropped or doubled."""

    async def publish(self, gateway: str, payload: bytes) -> None:
        await self.publish_many([(gateway, payload)])

    async def publish_many(self, payloads: Sequence[tuple[str, bytes]]) -> None:
        injector = self._injector
        await injector.before(self._proc, self._generation, "bus.publish")
        out: list[tuple[str, bytes]] = []
        for gateway, payload in payloads:
            fate = injector.bus_fate()
            if fate != "send":
                self._proc.world.note(f"bus {fate} to {gateway}")
            if fate != "drop":
                out.append((gateway, payload))
            if fate == "twice":
                out.append((gateway, payload))
        world = self._proc.world
        near = [(g, p) for g, p in out if world.region_of(g) == self._proc.region]
        if near:
            await self._target.publish_many(near)
        if far := [(g, p) for g, p in out if world.region_of(g) != self._proc.region]:
            one_way = max(self._proc.rtt_s, world.wan_rtt_s) / 2  # across the WAN

            async def arrive(payloads: list[tuple[str, bytes]] = far) -> None:
                await self._target.publish_many(payloads)

            world.later(one_way, arrive)
        injector.after(self._proc, self._generation, "bus.publish")


class _Log(_Port):
    """The log: its consumers are proxied too."""

    def consumer(self, topic: str, *, group: str) -> _Consumer:
        return _Consumer(self._target.consumer(topic, group=group), group, self)


class _Consumer:
    def __init__(self, target: Any, group: str, log: _Log) -> None:
        self._target = target
        self._log = log
        self._label = f"log[{group}]"

    @property
    def assignment(self) -> frozenset[int]:
        result: frozenset[int] = self._target.assignment
        return result

    async def _call(self, op: str, fn: Callable[[], Any]) -> Any:
        log = self._log
        label = f"{self._label}.{op}"
        await log._injector.before(log._proc, log._generation, label)
        result = await fn()
        log._injector.after(log._proc, log._generation, label)
        return result

    async def __aenter__(self) -> Self:
        log = self._log
        await log._injector.before(log._proc, log._generation, f"{self._label}.join")
        await self._target.__aenter__()
        try:
            log._injector.after(log._proc, log._generation, f"{self._label}.join")
        except BaseException:  # joined, but the stage never saw it: leave (or time out)
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        proc = self._log._proc
        if proc.alive and proc.generation == self._log._generation:
            await self._target.aclose()
        else:  # a dead member holds its partitions until its session times out
            proc.world.later(proc.world.session_timeout_s, self._target.aclose)

    async def poll(self, *, max_records: int = 500, timeout_s: float = 1.0) -> Any:
        return await self._call(
            "poll", lambda: self._target.poll(max_records=max_records, timeout_s=timeout_s)
        )

    async def commit(self, offsets: Mapping[int, int]) -> None:
        await self._call("commit", lambda: self._target.commit(offsets))

    async def commit_transaction(self, outputs: Sequence[Any], offsets: Mapping[int, int]) -> Any:
        return await self._call(
            "commit_transaction", lambda: self._target.commit_transaction(outputs, offsets)
        )


def proxy_port(name: str, target: Any, proc: Process, generation: int) -> Any:
    """``target`` (a shared adapter) as process ``proc`` sees it in its run ``generation``."""
    kind = {"log": _Log, "bus": _Bus}.get(name, _Port)
    return kind(target, name, proc, generation)
