"""``NodeIdLease`` conformance: what every backend of the port must do."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, Fenced, Unavailable
from chatcore.ids._base import NodeIdLease, NodeLease

__all__ = ["NodeIdLeaseSuite"]

OpenLease = Callable[[range], Awaitable[NodeIdLease]]
Advance = Callable[[float], Awaitable[None]]


class LeaseEnv:
    """One backend under test: ``open`` fresh instances, ``advance`` time for them."""

    def __init__(self, open_lease: OpenLease, advance: Advance) -> None:
        self._open = open_lease
        self._advance = advance

    async def open(self, *, node_ids: range = range(1024)) -> NodeIdLease:
        """A backend instance over a fresh lease space of ``node_ids``; closed after the test."""
        return await self._open(node_ids)

    async def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for the backend's lease clock."""
        await self._advance(seconds)


TTL_S = 0.2
LONG_TTL_S = 30.0


class NodeIdLeaseSuite:
    """The ``NodeIdLease`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_lease``: it returns an async callable giving a new,
    not yet entered instance over a fresh, empty lease space of the given node ids
    (a new key prefix on a real service). The fixture ``advance`` lets time pass for
    the leases: a real sleep unless overridden (with a fake clock's step, say).
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_lease(self) -> OpenLease:
        """Override: new instances of the backend under test, given their node ids."""
        raise NotImplementedError("override the make_lease fixture")

    @pytest.fixture
    def advance(self) -> Advance:
        """How time passes for the backend's leases: really, unless overridden."""
        return anyio.sleep

    @pytest.fixture
    async def lease_backend(
        self, make_lease: OpenLease, advance: Advance
    ) -> AsyncIterator[LeaseEnv]:
        async with AsyncExitStack() as stack:

            async def open_lease(node_ids: range) -> NodeIdLease:
                return await stack.enter_async_context(await make_lease(node_ids))

            yield LeaseEnv(open_lease, advance)

    async def test_two_owners_get_different_node_ids(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open()
        a = await leases.acquire("a", ttl_s=TTL_S)
        b = await leases.acquire("b", ttl_s=TTL_S)

        assert a.node_id != b.node_id
        assert (a.owner, b.owner) == ("a", "b")
        assert 0 <= a.node_id <= 1023
        assert 0 <= b.node_id <= 1023

    async def test_same_owner_twice_is_two_holders(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open()
        first = await leases.acquire("a", ttl_s=TTL_S)
        second = await leases.acquire("a", ttl_s=TTL_S)

        assert first.node_id != second.node_id
        assert first.token != second.token

    async def test_concurrent_acquires_never_share_an_id(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open(node_ids=range(40))
        got: list[NodeLease] = []

        async def take(owner: str) -> None:
            # Long enough that no lease expires while the 40 acquires are under way
            # (with TTL_S, the first could lapse on a busy machine or a cluster).
            got.append(await leases.acquire(owner, ttl_s=LONG_TTL_S))

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(take, f"owner-{i}")

        assert sorted(lease.node_id for lease in got) == list(range(40))

    async def test_lease_records_its_ttl_in_whole_ms(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open()
        lease = await leases.acquire("a", ttl_s=TTL_S)
        assert lease.ttl_ms == 200
        assert lease.expires_at_ms > 0

    async def test_renew_extends_the_lease(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open(node_ids=range(1))
        lease = await leases.acquire("a", ttl_s=TTL_S)
        for _ in range(3):
            await lease_backend.advance(TTL_S * 0.6)
            renewed = await leases.renew(lease)
            assert renewed.expires_at_ms > lease.expires_at_ms
            assert (renewed.node_id, renewed.token) == (lease.node_id, lease.token)
            lease = renewed

        with pytest.raises(Unavailable):
            await leases.acquire("b", ttl_s=TTL_S)

    async def test_expired_lease_is_taken_and_old_holder_is_fenced(
        self, lease_backend: LeaseEnv
    ) -> None:
        leases = await lease_backend.open(node_ids=range(1))
        old = await leases.acquire("a", ttl_s=TTL_S)
        await lease_backend.advance(TTL_S * 1.5)
        new = await leases.acquire("b", ttl_s=TTL_S)

        assert new.node_id == old.node_id
        with pytest.raises(Fenced) as info:
            await leases.renew(old)
        assert not info.value.retriable

        await leases.release(old)  # a lost lease's release must not free the new holder's id
        with pytest.raises(Unavailable):
            await leases.acquire("c", ttl_s=TTL_S)
        assert (await leases.renew(new)).token == new.token

    async def test_expired_lease_cannot_be_renewed_even_if_untaken(
        self, lease_backend: LeaseEnv
    ) -> None:
        leases = await lease_backend.open(node_ids=range(1))
        lease = await leases.acquire("a", ttl_s=TTL_S)
        await lease_backend.advance(TTL_S * 1.5)

        with pytest.raises(Fenced, match="node id 0"):
            await leases.renew(lease)

    async def test_release_frees_the_id(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open(node_ids=range(1))
        a = await leases.acquire("a", ttl_s=TTL_S)
        await leases.release(a)
        await leases.release(a)  # idempotent

        b = await leases.acquire("b", ttl_s=TTL_S)
        assert b.node_id == a.node_id
        with pytest.raises(Fenced):
            await leases.renew(a)

    async def test_exhaustion_raises_unavailable(self, lease_backend: LeaseEnv) -> None:
        leases = await lease_backend.open(node_ids=range(3, 6))
        taken = {(await leases.acquire(f"o{i}", ttl_s=TTL_S)).node_id for i in range(3)}
        assert taken == {3, 4, 5}

        with pytest.raises(Unavailable, match="all 3 node ids") as info:
            await leases.acquire("late", ttl_s=TTL_S)
        assert info.value.retriable

    @pytest.mark.parametrize(("owner", "ttl_s"), [("", TTL_S), ("a", 0.0), ("a", -1.0)])
    async def test_bad_acquire_arguments_are_rejected(
        self, lease_backend: LeaseEnv, owner: str, ttl_s: float
    ) -> None:
        leases = await lease_backend.open()
        with pytest.raises(ValueError, match=r"owner|ttl_s"):
            await leases.acquire(owner, ttl_s=ttl_s)

    async def test_closed_backend_refuses_and_aclose_is_idempotent(
        self, lease_backend: LeaseEnv
    ) -> None:
        leases = await lease_backend.open()
        lease = await leases.acquire("a", ttl_s=TTL_S)
        await leases.aclose()
        await leases.aclose()

        with pytest.raises(ChatcoreClosed):
            await leases.acquire("b", ttl_s=TTL_S)
        with pytest.raises(ChatcoreClosed):
            await leases.renew(lease)
