"""``ReceiptStore`` conformance: what every backend of the port must do."""

from __future__ import annotations

import uuid

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import Watermarks
from chatcore.store._base import ReceiptStore
from chatcore.testing._backend import StoreEnv, StoreSuite

__all__ = ["ReceiptStoreSuite"]


def marks(w: Watermarks) -> tuple[int, int, int]:
    return (w.delivered_seq, w.read_seq, w.updated_ms)


_advance_calls = st.lists(
    st.tuples(st.sampled_from(["alice", "bob", "carol"]), st.integers(0, 30), st.integers(0, 30)),
    max_size=20,
)


class ReceiptStoreSuite(StoreSuite[ReceiptStore]):
    """The ``ReceiptStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new,
    not yet entered ``ReceiptStore`` over this test's own storage, empty at first (a
    fresh file, keyspace or key prefix). The suite enters and closes every instance.
    Set ``durable = True`` if a later instance of one test sees what earlier ones
    wrote; the restart tests run only then.
    """

    async def test_unknown_member_has_zeros(self, store: ReceiptStore) -> None:
        assert await store.get("c", "alice") == Watermarks("c", "alice", 0, 0, 0)
        assert await store.for_chat("c") == {}
        assert await store.for_user("alice", ["c"]) == {"c": Watermarks("c", "alice")}

    async def test_advance_raises_and_returns_what_get_reads(self, store: ReceiptStore) -> None:
        after = await store.advance("c", "alice", delivered_seq=5, now_ms=100)

        assert after == Watermarks("c", "alice", delivered_seq=5, read_seq=0, updated_ms=100)
        assert await store.get("c", "alice") == after
        after = await store.advance("c", "alice", delivered_seq=7, read_seq=3, now_ms=200)
        assert marks(after) == (7, 3, 200)
        assert await store.get("c", "alice") == after

    async def test_advance_never_lowers(self, store: ReceiptStore) -> None:
        await store.advance("c", "alice", delivered_seq=10, read_seq=8, now_ms=100)

        lower = await store.advance("c", "alice", delivered_seq=4, read_seq=2, now_ms=200)
        assert marks(lower) == (10, 8, 100)
        partial = await store.advance("c", "alice", delivered_seq=12, read_seq=1, now_ms=300)
        assert marks(partial) == (12, 8, 300)
        assert marks(await store.get("c", "alice")) == (12, 8, 300)

    async def test_read_implies_delivered(self, store: ReceiptStore) -> None:
        after = await store.advance("c", "alice", read_seq=9, now_ms=100)
        assert marks(after) == (9, 9, 100)

        after = await store.advance("c", "alice", delivered_seq=4, read_seq=12, now_ms=200)
        assert marks(after) == (12, 12, 200)
        after = await store.advance("c", "alice", delivered_seq=15, now_ms=300)
        assert marks(after) == (15, 12, 300)

    async def test_unchanged_advance_keeps_updated_ms(self, store: ReceiptStore) -> None:
        await store.advance("c", "alice", delivered_seq=6, read_seq=6, now_ms=100)

        same = await store.advance("c", "alice", delivered_seq=6, read_seq=6, now_ms=999)
        assert marks(same) == (6, 6, 100)
        same = await store.advance("c", "alice", now_ms=1000)
        assert marks(same) == (6, 6, 100)
        assert marks(await store.get("c", "alice")) == (6, 6, 100)

    async def test_advance_that_moves_nothing_stores_no_member(self, store: ReceiptStore) -> None:
        got = await store.advance("c", "alice", now_ms=500)

        assert got == Watermarks("c", "alice")
        assert await store.for_chat("c") == {}
        assert await store.get("c", "alice") == Watermarks("c", "alice")

    async def test_negative_seq_is_refused(self, store: ReceiptStore) -> None:
        await store.advance("c", "alice", delivered_seq=3, now_ms=1)
        with pytest.raises(InvalidRequest):
            await store.advance("c", "alice", delivered_seq=-1)
        with pytest.raises(InvalidRequest):
            await store.advance("c", "alice", read_seq=-5)

        assert marks(await store.get("c", "alice")) == (3, 0, 1)

    async def test_advance_many_applies_in_order_and_says_what_moved(
        self, store: ReceiptStore
    ) -> None:
        await store.advance("c", "alice", delivered_seq=5, now_ms=1)

        got = await store.advance_many(
            [
                Watermarks("c", "alice", delivered_seq=3, updated_ms=10),  # below: no move
                Watermarks("c", "alice", read_seq=4, updated_ms=20),
                Watermarks("c", "bob", delivered_seq=2, updated_ms=30),
                Watermarks("d", "alice", read_seq=7, updated_ms=40),
                Watermarks("c", "alice", delivered_seq=9, updated_ms=50),  # after the read
            ]
        )
        assert got == [
            None,
            Watermarks("c", "alice", 5, 4, 20),
            Watermarks("c", "bob", 2, 0, 30),
            Watermarks("d", "alice", 7, 7, 40),
            Watermarks("c", "alice", 9, 4, 50),
        ]
        assert await store.get("c", "alice") == Watermarks("c", "alice", 9, 4, 50)
        assert await store.get("c", "bob") == Watermarks("c", "bob", 2, 0, 30)
        assert await store.get("d", "alice") == Watermarks("d", "alice", 7, 7, 40)
        assert await store.advance_many([]) == []

    async def test_advance_many_with_a_bad_seq_stores_nothing(self, store: ReceiptStore) -> None:
        with pytest.raises(InvalidRequest):
            await store.advance_many(
                [
                    Watermarks("c", "alice", delivered_seq=3, updated_ms=1),
                    Watermarks("c", "bob", read_seq=-1, updated_ms=2),
                ]
            )
        assert await store.for_chat("c") == {}

    async def test_advance_many_matches_one_advance_at_a_time(self, store: ReceiptStore) -> None:
        calls = [("a", 3, 0), ("b", 0, 2), ("a", 2, 2), ("a", 0, 5), ("b", 1, 1), ("c", 0, 0)]
        expected: list[Watermarks | None] = []
        for ms, (user, d, r) in enumerate(calls, start=1):  # in chat "one", one at a time
            before = await store.get("one", user)
            after = await store.advance("one", user, delivered_seq=d, read_seq=r, now_ms=ms)
            expected.append(None if after == before else after)

        got = await store.advance_many(  # the same in chat "many", at once
            [
                Watermarks("many", user, delivered_seq=d, read_seq=r, updated_ms=ms)
                for ms, (user, d, r) in enumerate(calls, start=1)
            ]
        )
        renamed = [None if w is None else msgspec.structs.replace(w, chat_id="one") for w in got]
        assert renamed == expected
        many = {
            u: msgspec.structs.replace(w, chat_id="one")
            for u, w in (await store.for_chat("many")).items()
        }
        assert many == await store.for_chat("one")

    async def test_for_chat_lists_every_stored_member_of_that_chat_only(
        self, store: ReceiptStore
    ) -> None:
        await store.advance("c", "alice", delivered_seq=3, now_ms=1)
        await store.advance("c", "bob", read_seq=2, now_ms=2)
        await store.advance("d", "carol", read_seq=7, now_ms=3)
        await store.advance("d", "alice", read_seq=1, now_ms=4)

        assert await store.for_chat("c") == {
            "alice": Watermarks("c", "alice", 3, 0, 1),
            "bob": Watermarks("c", "bob", 2, 2, 2),
        }
        assert await store.for_chat("d") == {
            "carol": Watermarks("d", "carol", 7, 7, 3),
            "alice": Watermarks("d", "alice", 1, 1, 4),
        }
        assert await store.for_chat("e") == {}

    async def test_for_user_gives_every_asked_chat(self, store: ReceiptStore) -> None:
        await store.advance("c1", "alice", delivered_seq=4, read_seq=2, now_ms=10)
        await store.advance("c3", "alice", read_seq=9, now_ms=30)
        await store.advance("c2", "bob", read_seq=5, now_ms=20)

        got = await store.for_user("alice", ["c1", "c2", "c3", "c1"])
        assert got == {
            "c1": Watermarks("c1", "alice", 4, 2, 10),
            "c2": Watermarks("c2", "alice"),
            "c3": Watermarks("c3", "alice", 9, 9, 30),
        }
        assert await store.for_user("alice", []) == {}
        assert await store.for_user("nobody", ["c1"]) == {"c1": Watermarks("c1", "nobody")}

    async def test_for_user_over_many_chats(self, store: ReceiptStore) -> None:
        chats = [f"chat-{n}" for n in range(1200)]
        for n in range(0, 1200, 7):
            await store.advance(chats[n], "alice", read_seq=n + 1, now_ms=n)

        got = await store.for_user("alice", chats)
        assert list(got) == chats
        for n, chat in enumerate(chats):
            expected = (n + 1, n + 1, n) if n % 7 == 0 else (0, 0, 0)
            assert marks(got[chat]) == expected, chat
            assert (got[chat].chat_id, got[chat].user) == (chat, "alice")

    async def test_members_and_chats_are_isolated(self, store: ReceiptStore) -> None:
        await store.advance("c", "alice", read_seq=10, now_ms=1)

        assert await store.get("c", "bob") == Watermarks("c", "bob")
        assert await store.get("d", "alice") == Watermarks("d", "alice")
        assert await store.get("c", "alic") == Watermarks("c", "alic")

    async def test_concurrent_advances_end_at_the_maximum(self, store: ReceiptStore) -> None:
        async def advance(n: int) -> None:
            await store.advance("c", "alice", delivered_seq=n, read_seq=n // 2, now_ms=n)

        async with anyio.create_task_group() as tg:
            for n in [5, 40, 12, 33, 1, 39, 20]:
                tg.start_soon(advance, n)

        got = await store.get("c", "alice")
        assert (got.delivered_seq, got.read_seq) == (40, 20)

    async def test_watermarks_survive_close_and_reopen(self, env: StoreEnv[ReceiptStore]) -> None:
        if not env.durable:
            pytest.skip("this backend keeps watermarks in memory only")
        first = await env.open()
        await first.advance("c", "alice", delivered_seq=8, read_seq=5, now_ms=77)
        await first.aclose()

        again = await env.open()
        assert await again.get("c", "alice") == Watermarks("c", "alice", 8, 5, 77)
        lower = await again.advance("c", "alice", delivered_seq=3, now_ms=99)
        assert marks(lower) == (8, 5, 77)

    async def test_aclose_is_idempotent_and_later_calls_raise(self, store: ReceiptStore) -> None:
        await store.aclose()
        await store.aclose()

        with pytest.raises(ChatcoreClosed):
            await store.advance("c", "alice", read_seq=1)
        with pytest.raises(ChatcoreClosed):
            await store.advance_many([Watermarks("c", "alice", read_seq=1)])
        with pytest.raises(ChatcoreClosed):
            await store.get("c", "alice")
        with pytest.raises(ChatcoreClosed):
            await store.for_chat("c")
        with pytest.raises(ChatcoreClosed):
            await store.for_user("alice", ["c"])

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(calls=_advance_calls)
    async def test_watermarks_match_a_model(
        self, store: ReceiptStore, calls: list[tuple[str, int, int]]
    ) -> None:
        chat = f"c-{uuid.uuid4().hex}"
        model: dict[str, tuple[int, int, int]] = {}

        for now_ms, (user, delivered, read) in enumerate(calls, start=1):
            old_delivered, old_read, _ = model.get(user, (0, 0, 0))
            new_read = max(old_read, read)
            new_delivered = max(old_delivered, delivered, new_read)
            if (new_delivered, new_read) != (old_delivered, old_read):
                model[user] = (new_delivered, new_read, now_ms)
            got = await store.advance(
                chat, user, delivered_seq=delivered, read_seq=read, now_ms=now_ms
            )
            assert (got.chat_id, got.user) == (chat, user)
            assert marks(got) == model.get(user, (0, 0, 0))
            assert got.delivered_seq >= got.read_seq

        stored = await store.for_chat(chat)
        assert {user: marks(w) for user, w in stored.items()} == model
        for user in ["alice", "bob", "carol"]:
            assert marks(await store.get(chat, user)) == model.get(user, (0, 0, 0))
            mine = await store.for_user(user, [chat])
            assert marks(mine[chat]) == model.get(user, (0, 0, 0))
