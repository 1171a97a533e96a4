"""``OfflineIndex`` conformance: what every backend of the port must do.

User and chat names are unique per test. ``pending`` order is not part of the port,
so answers are compared by chat.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import anyio
import pytest

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.offline._base import OfflineIndex, PendingChat
from chatcore.testing._backend import Make

__all__ = ["OfflineIndexSuite"]


class OfflineEnv:
    """One backend under test: a fresh ``index`` and names no other test uses."""

    def __init__(self, index: OfflineIndex) -> None:
        self.index = index
        self._tag = uuid.uuid4().hex[:8]

    def name(self, name: str) -> str:
        return f"{name}-{self._tag}"

    async def pending(self, user: str) -> dict[str, PendingChat]:
        """``user``'s pending chats by chat id, checking each chat is listed once."""
        chats = await self.index.pending(user)
        by_chat = {p.chat_id: p for p in chats}
        assert len(by_chat) == len(chats), f"a chat listed twice: {chats}"
        return by_chat


class OfflineIndexSuite:
    """The ``OfflineIndex`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_index``: it returns an async callable giving a new, not
    yet entered, empty ``OfflineIndex`` (a fresh key prefix on a shared service). The suite
    enters it and closes it after the test.
    """

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def make_index(self) -> Make[OfflineIndex]:
        """Override: new instances of the backend under test."""
        raise NotImplementedError("override the make_index fixture")

    @pytest.fixture
    async def env(self, make_index: Make[OfflineIndex]) -> AsyncIterator[OfflineEnv]:
        async with AsyncExitStack() as stack:
            yield OfflineEnv(await stack.enter_async_context(await make_index()))

    async def test_nothing_pending_for_an_unknown_user(self, env: OfflineEnv) -> None:
        assert await env.index.pending(env.name("nobody")) == []

    async def test_pending_summarises_each_chat(self, env: OfflineEnv) -> None:
        alice, bob = env.name("alice"), env.name("bob")
        c1, c2 = env.name("c1"), env.name("c2")
        for seq in (3, 4, 5):
            await env.index.add([alice, bob], c1, seq)
        await env.index.add([alice], c2, 17)

        assert await env.pending(alice) == {
            c1: PendingChat(c1, first_seq=3, last_seq=5, count=3),
            c2: PendingChat(c2, first_seq=17, last_seq=17, count=1),
        }
        assert await env.pending(bob) == {c1: PendingChat(c1, first_seq=3, last_seq=5, count=3)}

    async def test_adding_a_seq_again_is_idempotent(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        await env.index.add([alice], chat, 7)
        await env.index.add([alice], chat, 7)
        await env.index.add([alice, alice], chat, 8)
        assert await env.pending(alice) == {chat: PendingChat(chat, 7, 8, 2)}

    async def test_seqs_out_of_order_and_with_holes(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        for seq in (9, 2, 5, 2, 30):
            await env.index.add([alice], chat, seq)
        assert await env.pending(alice) == {chat: PendingChat(chat, 2, 30, 4)}

    async def test_adding_for_no_user_changes_nothing(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        await env.index.add([], chat, 1)
        assert await env.index.pending(alice) == []

    async def test_concurrent_adds_are_all_counted(self, env: OfflineEnv) -> None:
        users = [env.name(f"u{i}") for i in range(5)]
        chat = env.name("c")
        async with anyio.create_task_group() as tg:
            for seq in range(1, 51):
                tg.start_soon(env.index.add, users, chat, seq)
        for user in users:
            assert await env.pending(user) == {chat: PendingChat(chat, 1, 50, 50)}

    async def test_clear_some_chats(self, env: OfflineEnv) -> None:
        alice, bob = env.name("alice"), env.name("bob")
        c1, c2, c3 = env.name("c1"), env.name("c2"), env.name("c3")
        for chat in (c1, c2, c3):
            await env.index.add([alice, bob], chat, 1)

        await env.index.clear(alice, [c1, c3, env.name("unknown")])

        assert await env.pending(alice) == {c2: PendingChat(c2, 1, 1, 1)}
        assert set(await env.pending(bob)) == {c1, c2, c3}

    async def test_clear_all_chats(self, env: OfflineEnv) -> None:
        alice, bob = env.name("alice"), env.name("bob")
        c1, c2 = env.name("c1"), env.name("c2")
        await env.index.add([alice, bob], c1, 1)
        await env.index.add([alice], c2, 4)

        await env.index.clear(alice)

        assert await env.index.pending(alice) == []
        assert await env.pending(bob) == {c1: PendingChat(c1, 1, 1, 1)}

    async def test_clear_with_no_chats_clears_nothing(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        await env.index.add([alice], chat, 1)
        await env.index.clear(alice, [])
        assert await env.pending(alice) == {chat: PendingChat(chat, 1, 1, 1)}

    async def test_clear_is_idempotent_and_unknown_users_are_fine(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        await env.index.add([alice], chat, 1)
        await env.index.clear(alice, [chat])
        await env.index.clear(alice, [chat])
        await env.index.clear(alice)
        await env.index.clear(env.name("nobody"))
        await env.index.clear(env.name("nobody"), [chat])
        assert await env.index.pending(alice) == []

    async def test_adding_after_clear_starts_afresh(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        for seq in (1, 2, 3):
            await env.index.add([alice], chat, seq)
        await env.index.clear(alice, [chat])
        await env.index.add([alice], chat, 9)
        assert await env.pending(alice) == {chat: PendingChat(chat, 9, 9, 1)}

    @pytest.mark.parametrize("seq", [0, -1])
    async def test_add_rejects_a_seq_below_one(self, env: OfflineEnv, seq: int) -> None:
        alice, chat = env.name("alice"), env.name("c")
        with pytest.raises(InvalidRequest):
            await env.index.add([alice], chat, seq)
        assert await env.index.pending(alice) == []

    async def test_aclose_is_idempotent_and_later_calls_raise(self, env: OfflineEnv) -> None:
        alice, chat = env.name("alice"), env.name("c")
        async with env.index as entered:
            assert entered is env.index
        await env.index.aclose()
        with pytest.raises(ChatcoreClosed):
            await env.index.add([alice], chat, 1)
        with pytest.raises(ChatcoreClosed):
            await env.index.pending(alice)
