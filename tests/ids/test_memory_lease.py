"""What only the memory backend promises, beyond the conformance suite."""

from __future__ import annotations

import pytest

from chatcore.ids.memory import MemoryNodeIdLease

from ._fakes import FakeClock

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("node_ids", [range(0), range(-1, 3), range(1020, 1025)])
def test_node_id_range_outside_0_to_1023_is_rejected(node_ids: range) -> None:
    with pytest.raises(ValueError, match="node_ids"):
        MemoryNodeIdLease(node_ids=node_ids)


async def test_context_manager_returns_itself_and_closes() -> None:
    async with MemoryNodeIdLease() as leases:
        lease = await leases.acquire("a", ttl_s=1)
    assert lease.node_id == 0
    await leases.aclose()


async def test_lease_times_come_from_the_clock() -> None:
    clock = FakeClock(5_000)
    async with MemoryNodeIdLease(clock=clock) as leases:
        lease = await leases.acquire("a", ttl_s=1.5)
        assert lease.expires_at_ms == 6_500
        clock.advance(1_000)
        assert (await leases.renew(lease)).expires_at_ms == 7_500
        tiny = await leases.acquire("b", ttl_s=0.000_1)
        assert (tiny.ttl_ms, tiny.expires_at_ms) == (1, 6_001)


async def test_prefers_a_never_held_id_then_the_longest_expired() -> None:
    clock = FakeClock(0)
    async with MemoryNodeIdLease(clock=clock, node_ids=range(3)) as leases:
        first = await leases.acquire("a", ttl_s=1)
        clock.advance(100)
        second = await leases.acquire("b", ttl_s=1)
        clock.advance(5_000)
        assert (await leases.acquire("c", ttl_s=1)).node_id == 2
        assert (await leases.acquire("d", ttl_s=1)).node_id == first.node_id
        assert (await leases.acquire("e", ttl_s=1)).node_id == second.node_id
