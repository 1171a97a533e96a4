"""``PresenceStore`` conformance: what every backend of the port must do.

Time is passed as ``now_ms``, starting at the wall clock. ``changes()`` must be
subscribed when its context manager has entered.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import ClassVar

import anyio
import pytest
from anyio.abc import TaskStatus

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence._base import PresenceStore
from chatcore.testing._backend import Make

__all__ = ["PresenceStoreSuite"]


TTL_S = 0.2


LONG_TTL_S = 30.0


WAIT_S = 2.0


class PresenceEnv:
    """One backend under test: a fresh ``store``, the test's clock, unique user names."""

    def __init__(self, store: PresenceStore, *, real_time: bool, expire_returns: bool) -> None:
        self.store = store
        self.real_time = real_time
        self.expire_returns = expire_returns
        self.now_ms = int(time.time() * 1000)
        self._tag = uuid.uuid4().hex[:8]

    def user(self, name: str) -> str:
        """A user name no other test uses."""
        return f"{name}-{self._tag}"

    async def advance(self, ms: int) -> int:
        """Let ``ms`` pass (really, for a real-time backend); the new ``now_ms``."""
        self.now_ms += ms
        if self.real_time:
            await anyio.sleep(ms / 1000)
        return self.now_ms


async def next_change(changes: AsyncIterator[PresenceState]) -> PresenceState:
    with anyio.fail_after(WAIT_S):
        return await anext(changes)


class PresenceStoreSuite:
    """The ``PresenceStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new, not
    yet entered, empty ``PresenceStore`` (a fresh key prefix on a shared service). The suite
    enters it and closes it after the test.
    Set ``real_time = True`` if the engine expires entries on its own clock
    (``advance`` then also sleeps; TTLs here are a fraction of a second), and
    ``expire_returns = False`` if expiries are reported only through ``changes()``.
    """

    pytestmark = pytest.mark.anyio
    real_time: ClassVar[bool] = False
    expire_returns: ClassVar[bool] = True

    @pytest.fixture
    def make_store(self) -> Make[PresenceStore]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_store fixture")

    @pytest.fixture
    async def env(self, make_store: Make[PresenceStore]) -> AsyncIterator[PresenceEnv]:
        async with AsyncExitStack() as stack:
            yield PresenceEnv(
                await stack.enter_async_context(await make_store()),
                real_time=self.real_time,
                expire_returns=self.expire_returns,
            )

    async def test_unknown_users_are_offline_and_never_seen(self, env: PresenceEnv) -> None:
        a, b = env.user("a"), env.user("b")
        got = await env.store.states([a, b], now_ms=env.now_ms)
        assert got == {a: PresenceState(a, False, None), b: PresenceState(b, False, None)}

    async def test_states_answers_every_user_asked_in_one_call(self, env: PresenceEnv) -> None:
        a, b, c = env.user("a"), env.user("b"), env.user("c")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        await env.store.touch(c, "web", ttl_s=LONG_TTL_S, now_ms=t0 + 5)

        got = await env.store.states([a, b, c, a], now_ms=t0 + 10)

        assert got == {
            a: PresenceState(a, True, t0),
            b: PresenceState(b, False, None),
            c: PresenceState(c, True, t0 + 5),
        }
        assert await env.store.states([], now_ms=t0) == {}

    async def test_touch_is_true_only_when_the_user_comes_online(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        assert await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0) is True
        assert await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 1) is False
        assert await env.store.touch(a, "laptop", ttl_s=LONG_TTL_S, now_ms=t0 + 2) is False

        got = await env.store.states([a], now_ms=t0 + 3)
        assert got[a] == PresenceState(a, True, t0 + 2)

    async def test_touch_many_is_touch_for_each_device(self, env: PresenceEnv) -> None:
        users = [env.user(f"u{i}") for i in range(1203)]  # more than one pipeline
        t0 = env.now_ms
        assert await env.store.touch(users[0], "phone", ttl_s=LONG_TTL_S, now_ms=t0) is True
        devices = [(users[0], "laptop"), *((u, "phone") for u in users), (users[1], "web")]

        got = await env.store.touch_many(devices, ttl_s=LONG_TTL_S, now_ms=t0 + 1)

        assert got == [False, False, *([True] * (len(users) - 1)), False]
        states = await env.store.states(users, now_ms=t0 + 2)
        assert all(state == PresenceState(u, True, t0 + 1) for u, state in states.items())
        assert await env.store.touch_many([], ttl_s=LONG_TTL_S, now_ms=t0) == []

    @pytest.mark.parametrize("ttl_s", [0.0, math.nan])
    async def test_touch_many_with_a_bad_ttl_touches_nothing(
        self, env: PresenceEnv, ttl_s: float
    ) -> None:
        a, b = env.user("a"), env.user("b")
        with pytest.raises(InvalidRequest):
            await env.store.touch_many([(a, "phone"), (b, "phone")], ttl_s=ttl_s, now_ms=env.now_ms)
        got = await env.store.states([a, b], now_ms=env.now_ms)
        assert got == {a: PresenceState(a, False, None), b: PresenceState(b, False, None)}

    async def test_device_is_online_until_its_ttl_then_last_seen_at_its_touch(
        self,
        env: PresenceEnv,
    ) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t0)

        assert (await env.store.states([a], now_ms=await env.advance(100)))[a].online is True
        got = await env.store.states([a], now_ms=await env.advance(200))
        assert got[a] == PresenceState(a, False, t0)

    async def test_heartbeat_extends_the_ttl(self, env: PresenceEnv) -> None:
        a = env.user("a")
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=env.now_ms)
        t1 = await env.advance(130)
        assert await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t1) is False

        got = await env.store.states([a], now_ms=await env.advance(130))
        assert got[a] == PresenceState(a, True, t1)

    async def test_leave_of_the_last_device_takes_the_user_offline(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        await env.store.touch(a, "laptop", ttl_s=LONG_TTL_S, now_ms=t0 + 1)

        assert await env.store.leave(a, "phone", now_ms=t0 + 10) is False
        assert (await env.store.states([a], now_ms=t0 + 11))[a] == PresenceState(a, True, t0 + 10)
        assert await env.store.leave(a, "laptop", now_ms=t0 + 20) is True
        assert (await env.store.states([a], now_ms=t0 + 21))[a] == PresenceState(a, False, t0 + 20)

    async def test_leave_twice_is_true_once(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        assert await env.store.leave(a, "phone", now_ms=t0 + 10) is True
        assert await env.store.leave(a, "phone", now_ms=t0 + 20) is False
        assert (await env.store.states([a], now_ms=t0 + 30))[a] == PresenceState(a, False, t0 + 10)

    async def test_leave_of_an_unknown_device_changes_nothing(self, env: PresenceEnv) -> None:
        a, b = env.user("a"), env.user("b")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)

        assert await env.store.leave(a, "tablet", now_ms=t0 + 10) is False
        assert await env.store.leave(b, "phone", now_ms=t0 + 10) is False
        got = await env.store.states([a, b], now_ms=t0 + 20)
        assert got == {a: PresenceState(a, True, t0), b: PresenceState(b, False, None)}

    async def test_one_device_expiring_keeps_the_user_online(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t0)
        await env.store.touch(a, "laptop", ttl_s=LONG_TTL_S, now_ms=t0 + 1)
        now = await env.advance(300)

        assert await env.store.expire(now_ms=now) == []
        assert (await env.store.states([a], now_ms=now))[a] == PresenceState(a, True, t0 + 1)

    async def test_last_seen_is_the_latest_touch_or_leave(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t0)
        await env.store.touch(a, "laptop", ttl_s=LONG_TTL_S, now_ms=t0 + 10)
        await env.store.leave(a, "laptop", now_ms=t0 + 50)

        assert (await env.store.states([a], now_ms=t0 + 60))[a] == PresenceState(a, True, t0 + 50)
        got = await env.store.states([a], now_ms=await env.advance(300))
        assert got[a] == PresenceState(a, False, t0 + 50)

    async def test_coming_back_after_leaving_is_online_again(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        await env.store.leave(a, "phone", now_ms=t0 + 10)
        assert await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 20) is True
        assert (await env.store.states([a], now_ms=t0 + 21))[a] == PresenceState(a, True, t0 + 20)

    async def test_coming_back_after_expiry_is_online_again(self, env: PresenceEnv) -> None:
        a = env.user("a")
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=env.now_ms)
        t1 = await env.advance(300)
        assert await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t1) is True

    async def test_changes_report_each_transition_once_in_order(self, env: PresenceEnv) -> None:
        a, marker = env.user("a"), env.user("marker")
        t0 = env.now_ms
        async with env.store.changes() as changes:
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
            await env.store.touch(a, "laptop", ttl_s=LONG_TTL_S, now_ms=t0 + 1)
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 2)
            await env.store.leave(a, "phone", now_ms=t0 + 3)
            await env.store.leave(a, "laptop", now_ms=t0 + 4)
            await env.store.leave(a, "laptop", now_ms=t0 + 5)
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 6)
            await env.store.touch(marker, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 7)

            got = [await next_change(changes) for _ in range(4)]

        assert got == [
            PresenceState(a, True, t0),
            PresenceState(a, False, t0 + 4),
            PresenceState(a, True, t0 + 6),
            PresenceState(marker, True, t0 + 7),
        ]

    async def test_changes_go_to_every_subscriber(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        async with env.store.changes() as first, env.store.changes() as second:
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
            assert await next_change(first) == PresenceState(a, True, t0)
            assert await next_change(second) == PresenceState(a, True, t0)

    async def test_changes_start_at_subscription(self, env: PresenceEnv) -> None:
        a, b = env.user("a"), env.user("b")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        async with env.store.changes() as changes:
            await env.store.touch(b, "phone", ttl_s=LONG_TTL_S, now_ms=t0 + 1)
            assert await next_change(changes) == PresenceState(b, True, t0 + 1)

    async def test_expire_reports_who_went_offline(self, env: PresenceEnv) -> None:
        a, b, marker = env.user("a"), env.user("b"), env.user("marker")
        t0 = env.now_ms
        await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t0)
        await env.store.touch(b, "phone", ttl_s=LONG_TTL_S, now_ms=t0)
        async with env.store.changes() as changes:
            assert await env.store.expire(now_ms=await env.advance(100)) == []
            now = await env.advance(200)

            gone = await env.store.expire(now_ms=now)
            again = await env.store.expire(now_ms=now + 1)
            await env.store.touch(marker, "phone", ttl_s=LONG_TTL_S, now_ms=now + 2)

            assert await next_change(changes) == PresenceState(a, False, t0)
            assert await next_change(changes) == PresenceState(marker, True, now + 2)
        if env.expire_returns:
            assert gone == [PresenceState(a, False, t0)]
        else:
            assert gone == []
        assert again == []
        got = await env.store.states([a, b], now_ms=now)
        assert got == {a: PresenceState(a, False, t0), b: PresenceState(b, True, t0)}

    async def test_expiry_noticed_late_still_alternates_transitions(self, env: PresenceEnv) -> None:
        a = env.user("a")
        t0 = env.now_ms
        async with env.store.changes() as changes:
            await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t0)
            t1 = await env.advance(300)
            await env.store.touch(a, "phone", ttl_s=TTL_S, now_ms=t1)

            got = [await next_change(changes) for _ in range(3)]

        assert got == [
            PresenceState(a, True, t0),
            PresenceState(a, False, t0),
            PresenceState(a, True, t1),
        ]

    @pytest.mark.parametrize("ttl_s", [0.0, -1.0, math.nan, math.inf])
    async def test_touch_rejects_a_ttl_that_is_not_positive_and_finite(
        self, env: PresenceEnv, ttl_s: float
    ) -> None:
        a = env.user("a")
        with pytest.raises(InvalidRequest):
            await env.store.touch(a, "phone", ttl_s=ttl_s, now_ms=env.now_ms)
        assert (await env.store.states([a], now_ms=env.now_ms))[a].online is False

    async def test_aclose_ends_subscriptions_and_is_idempotent(self, env: PresenceEnv) -> None:
        a = env.user("a")
        seen: list[PresenceState] = []
        ended = anyio.Event()

        async def listen(task_status: TaskStatus[None]) -> None:
            async with env.store.changes() as changes:
                task_status.started()
                seen.extend([change async for change in changes])
            ended.set()

        async with anyio.create_task_group() as tg:
            await tg.start(listen)
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=env.now_ms)
            await env.store.aclose()
            await env.store.aclose()
            with anyio.fail_after(WAIT_S):
                await ended.wait()

        assert all(change.user == a for change in seen)
        with pytest.raises(ChatcoreClosed):
            await env.store.touch(a, "phone", ttl_s=LONG_TTL_S, now_ms=env.now_ms)
        with pytest.raises(ChatcoreClosed):
            await env.store.states([a], now_ms=env.now_ms)

    async def test_context_manager_enters_as_itself(self, env: PresenceEnv) -> None:
        async with env.store as entered:
            assert entered is env.store
        with pytest.raises(ChatcoreClosed):
            await env.store.expire(now_ms=env.now_ms)
