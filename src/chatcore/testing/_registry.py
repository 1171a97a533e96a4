"""``ConnectionRegistry`` conformance: what every backend of the port must do.

TTLs are real time, a fraction of a second, so expiry tests sleep.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import Connection
from chatcore.registry._base import ConnectionRegistry
from chatcore.testing._backend import Make

__all__ = ["ConnectionRegistrySuite"]


TTL_S = 0.2


LONG_TTL_S = 30.0


class RegistryEnv:
    """One backend under test: a fresh ``registry`` and names no other test uses."""

    def __init__(self, registry: ConnectionRegistry) -> None:
        self.registry = registry
        self._tag = uuid.uuid4().hex[:8]

    def user(self, name: str) -> str:
        return f"{name}-{self._tag}"

    def conn(self, user: str, device: str = "phone", gateway: str = "gw-1") -> Connection:
        """A connection of ``user`` (a name from :meth:`user`) with a unique ``conn_id``."""
        return Connection(user, device, f"{gateway}-{self._tag}", uuid.uuid4().hex)


def by_conn_id(conns: Iterable[Connection]) -> list[Connection]:
    return sorted(conns, key=lambda c: c.conn_id)


class ConnectionRegistrySuite:
    """The ``ConnectionRegistry`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_registry``: it returns an async callable giving a new, not
    yet entered, empty ``ConnectionRegistry`` (a fresh key prefix on a shared service). The suite
    enters it and closes it after the test.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_registry(self) -> Make[ConnectionRegistry]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_registry fixture")

    @pytest.fixture
    async def env(self, make_registry: Make[ConnectionRegistry]) -> AsyncIterator[RegistryEnv]:
        async with AsyncExitStack() as stack:
            yield RegistryEnv(await stack.enter_async_context(await make_registry()))

    async def test_lookup_of_unknown_users_is_empty(self, env: RegistryEnv) -> None:
        assert await env.registry.lookup([env.user("a"), env.user("b")]) == {}
        assert await env.registry.lookup([]) == {}

    async def test_registered_connections_are_found_in_one_batched_lookup(
        self, env: RegistryEnv
    ) -> None:
        a, b, c = env.user("a"), env.user("b"), env.user("c")
        a_phone, a_web = env.conn(a, "phone", "gw-1"), env.conn(a, "web", "gw-2")
        b_phone = env.conn(b, "phone", "gw-2")
        for conn in (a_phone, a_web, b_phone):
            await env.registry.register(conn, ttl_s=LONG_TTL_S)

        got = await env.registry.lookup([a, b, c, a])

        assert set(got) == {a, b}
        assert by_conn_id(got[a]) == by_conn_id([a_phone, a_web])
        assert got[b] == [b_phone]

    async def test_registering_again_does_not_duplicate(self, env: RegistryEnv) -> None:
        a = env.user("a")
        conn = env.conn(a)
        await env.registry.register(conn, ttl_s=LONG_TTL_S)
        await env.registry.register(conn, ttl_s=LONG_TTL_S)
        assert await env.registry.lookup([a]) == {a: [conn]}

    async def test_register_many_registers_each_and_refreshes(self, env: RegistryEnv) -> None:
        users = [env.user(f"u{i}") for i in range(1203)]  # more than one pipeline
        conns = [env.conn(u, "phone", f"gw-{i % 3}") for i, u in enumerate(users)]
        await env.registry.register_many(conns[:5], ttl_s=TTL_S)
        await env.registry.register_many(conns, ttl_s=LONG_TTL_S)  # the first 5 again
        await env.registry.register_many([], ttl_s=LONG_TTL_S)

        await anyio.sleep(TTL_S + 0.15)  # the first registrations' TTL is over

        got = await env.registry.lookup(users)
        assert got == {c.user: [c] for c in conns}
        await env.registry.drop_gateway(conns[0].gateway)  # the gateway set is kept too
        assert set(await env.registry.lookup(users)) == {
            c.user for c in conns[1:] if c.gateway != conns[0].gateway
        }

    async def test_unregister_forgets_only_that_connection(self, env: RegistryEnv) -> None:
        a = env.user("a")
        phone, web = env.conn(a, "phone"), env.conn(a, "web")
        await env.registry.register(phone, ttl_s=LONG_TTL_S)
        await env.registry.register(web, ttl_s=LONG_TTL_S)

        await env.registry.unregister(phone)
        assert await env.registry.lookup([a]) == {a: [web]}
        await env.registry.unregister(web)
        assert await env.registry.lookup([a]) == {}

    async def test_unregister_of_an_unknown_connection_is_no_error(self, env: RegistryEnv) -> None:
        a = env.user("a")
        known = env.conn(a)
        await env.registry.register(known, ttl_s=LONG_TTL_S)

        await env.registry.unregister(env.conn(env.user("nobody")))
        await env.registry.unregister(env.conn(a))
        await env.registry.unregister(Connection(a, known.device, known.gateway, "other-conn"))
        await env.registry.unregister(known)
        await env.registry.unregister(known)

        assert await env.registry.lookup([a]) == {}

    async def test_connection_expires_after_its_ttl(self, env: RegistryEnv) -> None:
        a = env.user("a")
        short, long = env.conn(a, "phone"), env.conn(a, "web")
        await env.registry.register(short, ttl_s=TTL_S)
        await env.registry.register(long, ttl_s=LONG_TTL_S)
        assert by_conn_id((await env.registry.lookup([a]))[a]) == by_conn_id([short, long])

        await anyio.sleep(TTL_S + 0.15)

        assert await env.registry.lookup([a]) == {a: [long]}

    async def test_registering_again_refreshes_the_ttl(self, env: RegistryEnv) -> None:
        a = env.user("a")
        conn = env.conn(a)
        ttl_s = 0.6
        await env.registry.register(conn, ttl_s=ttl_s)
        await anyio.sleep(0.4)
        await env.registry.register(conn, ttl_s=ttl_s)
        await anyio.sleep(0.4)

        assert await env.registry.lookup([a]) == {a: [conn]}

    async def test_expired_connection_can_register_again(self, env: RegistryEnv) -> None:
        a = env.user("a")
        conn = env.conn(a)
        await env.registry.register(conn, ttl_s=TTL_S)
        await anyio.sleep(TTL_S + 0.15)
        await env.registry.register(conn, ttl_s=LONG_TTL_S)
        assert await env.registry.lookup([a]) == {a: [conn]}

    async def test_drop_gateway_forgets_its_connections_only(self, env: RegistryEnv) -> None:
        a, b = env.user("a"), env.user("b")
        a_on_1, a_on_2 = env.conn(a, "phone", "gw-1"), env.conn(a, "web", "gw-2")
        b_on_1, b_on_2 = env.conn(b, "phone", "gw-1"), env.conn(b, "web", "gw-2")
        for conn in (a_on_1, a_on_2, b_on_1, b_on_2):
            await env.registry.register(conn, ttl_s=LONG_TTL_S)

        await env.registry.drop_gateway(a_on_1.gateway)
        await env.registry.drop_gateway(a_on_1.gateway)
        await env.registry.drop_gateway(f"unknown-{a_on_1.gateway}")

        assert await env.registry.lookup([a, b]) == {a: [a_on_2], b: [b_on_2]}
        await env.registry.drop_gateway(a_on_2.gateway)
        assert await env.registry.lookup([a, b]) == {}

    async def test_a_dropped_gateway_can_register_again(self, env: RegistryEnv) -> None:
        a = env.user("a")
        conn = env.conn(a)
        await env.registry.register(conn, ttl_s=LONG_TTL_S)
        await env.registry.drop_gateway(conn.gateway)
        await env.registry.register(conn, ttl_s=LONG_TTL_S)
        assert await env.registry.lookup([a]) == {a: [conn]}

    @pytest.mark.parametrize("ttl_s", [0.0, -1.0, math.nan, math.inf])
    async def test_register_rejects_a_ttl_that_is_not_positive_and_finite(
        self, env: RegistryEnv, ttl_s: float
    ) -> None:
        a = env.user("a")
        with pytest.raises(InvalidRequest):
            await env.registry.register(env.conn(a), ttl_s=ttl_s)
        assert await env.registry.lookup([a]) == {}

    @pytest.mark.parametrize("ttl_s", [0.0, math.nan])
    async def test_register_many_with_a_bad_ttl_registers_nothing(
        self, env: RegistryEnv, ttl_s: float
    ) -> None:
        a, b = env.user("a"), env.user("b")
        with pytest.raises(InvalidRequest):
            await env.registry.register_many([env.conn(a), env.conn(b)], ttl_s=ttl_s)
        assert await env.registry.lookup([a, b]) == {}

    async def test_aclose_is_idempotent_and_later_calls_raise(self, env: RegistryEnv) -> None:
        a = env.user("a")
        async with env.registry as entered:
            assert entered is env.registry
        await env.registry.aclose()

        with pytest.raises(ChatcoreClosed):
            await env.registry.register(env.conn(a), ttl_s=LONG_TTL_S)
        with pytest.raises(ChatcoreClosed):
            await env.registry.lookup([a])
