"""What the memory ``PresenceStore`` does beyond the port (conformance: tests/conformance)."""

from __future__ import annotations

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from chatcore.errors import InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence import MemoryPresenceStore

pytestmark = pytest.mark.anyio

T0 = 1_750_000_000_000


async def test_a_slow_subscriber_loses_its_oldest_changes_only() -> None:
    store = MemoryPresenceStore(buffer=2)
    async with store, store.changes() as slow, store.changes() as fast:
        for i in range(4):
            await store.touch(f"u{i}", "phone", ttl_s=60, now_ms=T0 + i)
            assert await anext(fast) == PresenceState(f"u{i}", True, T0 + i)

        assert store.dropped == 2
        with anyio.fail_after(1):
            assert [await anext(slow), await anext(slow)] == [
                PresenceState("u2", True, T0 + 2),
                PresenceState("u3", True, T0 + 3),
            ]


async def test_a_subscriber_that_left_is_no_longer_fed() -> None:
    async with MemoryPresenceStore(buffer=1) as store:
        async with store.changes():
            pass
        await store.touch("u", "phone", ttl_s=60, now_ms=T0)
        await store.touch("v", "phone", ttl_s=60, now_ms=T0)
        assert store.dropped == 0


async def test_an_abandoned_iterator_is_dropped_not_fatal() -> None:
    async with MemoryPresenceStore() as store, store.changes() as changes:
        assert isinstance(changes, MemoryObjectReceiveStream)
        await changes.aclose()
        assert await store.touch("u", "phone", ttl_s=60, now_ms=T0) is True
        assert await store.touch("v", "phone", ttl_s=60, now_ms=T0) is True


async def test_buffer_must_hold_at_least_one_change() -> None:
    with pytest.raises(InvalidRequest):
        MemoryPresenceStore(buffer=0)


async def test_expire_only_visits_users_with_devices() -> None:
    async with MemoryPresenceStore() as store:
        await store.touch("u", "phone", ttl_s=1, now_ms=T0)
        await store.leave("u", "phone", now_ms=T0 + 10)
        await store.touch("v", "phone", ttl_s=1, now_ms=T0)
        assert await store.expire(now_ms=T0 + 5_000) == [PresenceState("v", False, T0)]
        assert await store.states(["u"], now_ms=T0 + 5_000) == {
            "u": PresenceState("u", False, T0 + 10)
        }
