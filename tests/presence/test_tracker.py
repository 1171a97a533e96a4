"""PresenceTracker: a process's devices kept present, and changes handed to watchers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import anyio
import pytest
from anyio.abc import TaskGroup

from chatcore.model import PresenceState
from chatcore.presence import MemoryPresenceStore, PresenceRules, PresenceTracker

pytestmark = pytest.mark.anyio

T0 = 1_750_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[MemoryPresenceStore]:
    async with MemoryPresenceStore() as store:
        yield store


async def online(store: MemoryPresenceStore, user: str, now_ms: int) -> bool:
    return (await store.states([user], now_ms=now_ms))[user].online


async def test_a_device_leaves_with_its_last_local_connection(store: MemoryPresenceStore) -> None:
    clock = Clock()
    tracker = PresenceTracker[str](store, clock=clock)
    await tracker.arrive("alice", "phone")
    await tracker.arrive("alice", "phone")
    await tracker.depart("alice", "phone")
    assert await online(store, "alice", T0)
    clock.now += 1
    await tracker.depart("alice", "phone")
    assert (await store.states(["alice"], now_ms=clock.now))["alice"] == PresenceState(
        "alice", False, T0 + 1
    )


async def test_a_heartbeat_keeps_local_devices_and_expires_the_others(
    store: MemoryPresenceStore,
) -> None:
    clock = Clock()
    tracker = PresenceTracker[str](store, clock=clock)  # ttl 60 s, heartbeat 30 s
    await tracker.arrive("alice", "phone")
    await store.touch("bob", "phone", ttl_s=60, now_ms=T0)  # another gateway's, not refreshed
    async with store.changes() as changes:
        clock.now = T0 + 30_000
        await tracker.heartbeat()
        clock.now = T0 + 61_000
        await tracker.heartbeat()
        assert await anext(changes) == PresenceState("bob", False, T0)
    assert await online(store, "alice", T0 + 90_000)
    assert not await online(store, "bob", T0 + 100_000)


class CountingStore(MemoryPresenceStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def touch(self, user: str, device: str, *, ttl_s: float, now_ms: int) -> bool:
        self.calls.append("touch")
        return await super().touch(user, device, ttl_s=ttl_s, now_ms=now_ms)

    async def touch_many(
        self, devices: Sequence[tuple[str, str]], *, ttl_s: float, now_ms: int
    ) -> list[bool]:
        self.calls.append(f"touch_many {len(devices)}")
        return [
            await MemoryPresenceStore.touch(self, u, d, ttl_s=ttl_s, now_ms=now_ms)
            for u, d in devices
        ]


async def test_a_heartbeat_touches_every_local_device_in_one_call() -> None:
    clock = Clock()
    async with CountingStore() as store:
        tracker = PresenceTracker[str](store, clock=clock)
        for i in range(50):
            await tracker.arrive(f"u{i}", "phone")
        store.calls.clear()
        clock.now = T0 + 30_000
        await tracker.heartbeat()
        assert store.calls == ["touch_many 50"]
        assert await online(store, "u49", T0 + 89_000)


async def test_a_departed_device_is_not_refreshed(store: MemoryPresenceStore) -> None:
    clock = Clock()
    tracker = PresenceTracker[str](store, clock=clock)
    await tracker.arrive("alice", "phone")
    await tracker.depart("alice", "phone")
    await tracker.heartbeat()
    assert not await online(store, "alice", T0)


class Watched:
    """Runs a tracker whose ``deliver`` records each (state, watchers) it is given."""

    def __init__(self, tracker: PresenceTracker[str]) -> None:
        self.tracker = tracker
        self.send, self.received = anyio.create_memory_object_stream[
            tuple[PresenceState, list[str]]
        ](100)

    async def deliver(self, state: PresenceState, watchers: list[str]) -> None:
        await self.send.send((state, sorted(watchers)))

    async def start(self, tg: TaskGroup) -> None:
        await tg.start(self.tracker.run, self.deliver)

    async def next(self) -> tuple[PresenceState, list[str]]:
        with anyio.fail_after(5):
            return await self.received.receive()


async def test_changes_go_to_the_watchers_of_that_user(store: MemoryPresenceStore) -> None:
    tracker = PresenceTracker[str](store, clock=Clock())
    watched = Watched(tracker)
    async with anyio.create_task_group() as tg:
        await watched.start(tg)
        tracker.watch("w1", ["bob", "carol"])
        tracker.watch("w2", ["bob"])
        await store.touch("dave", "phone", ttl_s=60, now_ms=T0)  # watched by nobody
        await store.touch("bob", "phone", ttl_s=60, now_ms=T0)
        assert await watched.next() == (PresenceState("bob", True, T0), ["w1", "w2"])

        tracker.unwatch("w1", ["bob"])
        tracker.forget("w2")
        await store.leave("bob", "phone", now_ms=T0 + 1)  # watched by nobody now
        await store.touch("carol", "phone", ttl_s=60, now_ms=T0 + 2)
        assert await watched.next() == (PresenceState("carol", True, T0 + 2), ["w1"])
        tg.cancel_scope.cancel()


class ExpiryCounting(MemoryPresenceStore):
    def __init__(self) -> None:
        super().__init__()
        self.expired = anyio.Event()

    async def expire(self, *, now_ms: int) -> list[PresenceState]:
        gone = await super().expire(now_ms=now_ms)
        self.expired.set()
        return gone


async def test_run_heartbeats_every_heartbeat_s() -> None:
    async with ExpiryCounting() as store:
        clock = Clock()
        rules = PresenceRules(ttl_s=60, heartbeat_s=0.01)
        tracker = PresenceTracker[str](store, rules=rules, clock=clock)
        await tracker.arrive("alice", "phone")
        clock.now = T0 + 59_000
        async with anyio.create_task_group() as tg:
            await tg.start(tracker.run, Watched(tracker).deliver)
            with anyio.fail_after(5):
                await store.expired.wait()
            tg.cancel_scope.cancel()
        assert await online(store, "alice", T0 + 100_000)  # touched again at T0 + 59 s
