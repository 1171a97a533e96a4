"""``MessageStore`` conformance: what every backend of the port must do."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.errors import ChatcoreClosed, InvalidRequest
from chatcore.model import Attachment, StoredMessage
from chatcore.store._base import MessageStore
from chatcore.testing._backend import StoreEnv, StoreSuite

__all__ = ["MessageStoreSuite"]


def msg(chat_id: str, seq: int, *, body: str | None = None, sender: str = "alice") -> StoredMessage:
    return StoredMessage(
        chat_id=chat_id,
        seq=seq,
        message_id=1_000_000 + seq,
        sender=sender,
        client_msg_id=f"{sender}-{seq}",
        kind="text",
        body=f"message {seq}" if body is None else body,
        ts=1_750_000_000_000 + seq,
    )


def msgs(chat_id: str, seqs: Iterable[int]) -> list[StoredMessage]:
    return [msg(chat_id, s) for s in seqs]


def seqs_of(messages: list[StoredMessage]) -> list[int]:
    return [m.seq for m in messages]


class MessageStoreSuite(StoreSuite[MessageStore]):
    """The ``MessageStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new,
    not yet entered ``MessageStore`` over this test's own storage, empty at first (a
    fresh file, keyspace or key prefix). The suite enters and closes every instance.
    Set ``durable = True`` if a later instance of one test sees what earlier ones
    wrote; the restart tests run only then.
    """

    async def test_empty_chat_has_nothing(self, store: MessageStore) -> None:
        assert await store.last_seq("nobody") == 0
        assert await store.range("nobody") == []
        assert await store.range("nobody", after=0) == []
        assert await store.range("nobody", before=10) == []
        assert await store.find_client_msg("nobody", "alice", "alice-1") is None

    async def test_messages_round_trip_with_every_field(self, store: MessageStore) -> None:
        full = StoredMessage(
            chat_id="c",
            seq=1,
            message_id=2**62 + 5,
            sender="alice",
            client_msg_id="k-1",
            kind="image",
            body="caption ✓ 😀",
            ts=1_750_000_000_123,
            attachment=Attachment(
                url="https://x.invalid/a.png", name="a.png", size=42, mime="image/png"
            ),
            encrypted=True,
            sender_device="phone",
        )
        plain = msg("c", 2, body="")
        await store.append([full, plain])

        assert await store.range("c") == [full, plain]
        assert await store.find_client_msg("c", "alice", "k-1") == full

    async def test_append_is_idempotent_and_keeps_the_first(self, store: MessageStore) -> None:
        await store.append([msg("c", 1, body="first"), msg("c", 2)])
        await store.append([msg("c", 1, body="second"), msg("c", 3)])
        await store.append([msg("c", 1, body="third")])

        got = await store.range("c")
        assert seqs_of(got) == [1, 2, 3]
        assert got[0].body == "first"
        assert await store.last_seq("c") == 3

    async def test_duplicates_in_one_batch_keep_the_first(self, store: MessageStore) -> None:
        await store.append([msg("c", 1, body="a"), msg("c", 1, body="b"), msg("c", 2)])

        got = await store.range("c")
        assert [(m.seq, m.body) for m in got] == [(1, "a"), (2, "message 2")]

    async def test_replace_stores_the_newer_state_and_keeps_it(self, store: MessageStore) -> None:
        chat = f"c-{uuid.uuid4().hex}"
        first = msg(chat, 1, body="draft")
        await store.append([first, msg(chat, 2)])
        edited = msgspec.structs.replace(first, body="final", edited_ts=5, changed_seq=3)
        reacted = msgspec.structs.replace(edited, reactions=(("👍", ("bob",)),), changed_seq=4)

        await store.replace([reacted])
        await store.replace([edited])  # older: changes nothing
        await store.append([first])  # a replayed append: changes nothing
        assert (await store.range(chat))[0] == reacted
        assert await store.find_client_msg(chat, "alice", first.client_msg_id) == reacted
        assert seqs_of(await store.range(chat)) == [1, 2]

    async def test_replace_of_a_message_not_stored_stores_it(self, store: MessageStore) -> None:
        chat = f"c-{uuid.uuid4().hex}"
        gone = msgspec.structs.replace(msg(chat, 1), body="", deleted=True, changed_seq=2)
        await store.replace([gone])
        await store.append([msg(chat, 1)])
        assert await store.range(chat) == [gone]
        with pytest.raises(InvalidRequest):
            await store.replace([msg(chat, 0)])

    async def test_empty_append_is_fine(self, store: MessageStore) -> None:
        await store.append([])
        assert await store.last_seq("c") == 0

    async def test_seq_below_one_is_refused_and_nothing_is_stored(
        self, store: MessageStore
    ) -> None:
        with pytest.raises(InvalidRequest):
            await store.append([msg("c", 1), msg("c", 0)])
        with pytest.raises(InvalidRequest):
            await store.append([msg("c", -3)])

        assert await store.last_seq("c") == 0
        assert await store.range("c") == []

    async def test_range_without_bounds_gives_the_latest_ascending(
        self, store: MessageStore
    ) -> None:
        await store.append(msgs("c", range(1, 101)))

        assert seqs_of(await store.range("c")) == list(range(51, 101))
        assert seqs_of(await store.range("c", limit=3)) == [98, 99, 100]
        assert seqs_of(await store.range("c", limit=500)) == list(range(1, 101))

    async def test_range_after(self, store: MessageStore) -> None:
        await store.append(msgs("c", range(1, 11)))

        assert seqs_of(await store.range("c", after=0, limit=3)) == [1, 2, 3]
        assert seqs_of(await store.range("c", after=4, limit=3)) == [5, 6, 7]
        assert seqs_of(await store.range("c", after=8, limit=5)) == [9, 10]
        assert await store.range("c", after=10) == []
        assert await store.range("c", after=99) == []

    async def test_range_before(self, store: MessageStore) -> None:
        await store.append(msgs("c", range(1, 11)))

        assert seqs_of(await store.range("c", before=11, limit=3)) == [8, 9, 10]
        assert seqs_of(await store.range("c", before=5, limit=3)) == [2, 3, 4]
        assert seqs_of(await store.range("c", before=3, limit=5)) == [1, 2]
        assert seqs_of(await store.range("c", before=99, limit=2)) == [9, 10]
        assert await store.range("c", before=1) == []
        assert await store.range("c", before=0) == []

    async def test_range_between_gives_the_first_inside(self, store: MessageStore) -> None:
        await store.append(msgs("c", range(1, 21)))

        assert seqs_of(await store.range("c", after=3, before=8)) == [4, 5, 6, 7]
        assert seqs_of(await store.range("c", after=3, before=8, limit=2)) == [4, 5]
        assert seqs_of(await store.range("c", after=0, before=21, limit=3)) == [1, 2, 3]
        assert await store.range("c", after=5, before=6) == []
        assert await store.range("c", after=5, before=5) == []
        assert await store.range("c", after=9, before=2) == []

    async def test_range_limit_zero_is_empty_and_negative_is_refused(
        self, store: MessageStore
    ) -> None:
        await store.append(msgs("c", range(1, 4)))

        assert await store.range("c", limit=0) == []
        assert await store.range("c", after=0, limit=0) == []
        with pytest.raises(InvalidRequest):
            await store.range("c", limit=-1)

    async def test_range_skips_gaps(self, store: MessageStore) -> None:
        await store.append(msgs("c", [1, 2, 5, 9]))

        assert seqs_of(await store.range("c", after=2, limit=1)) == [5]
        assert seqs_of(await store.range("c", before=9, limit=2)) == [2, 5]
        assert seqs_of(await store.range("c", after=2, before=9)) == [5]
        assert await store.last_seq("c") == 9

    async def test_out_of_order_appends_read_back_in_order(self, store: MessageStore) -> None:
        await store.append(msgs("c", [5, 3]))
        await store.append(msgs("c", [1, 4, 2]))
        await store.append(msgs("c", [6]))

        assert seqs_of(await store.range("c")) == [1, 2, 3, 4, 5, 6]
        assert seqs_of(await store.range("c", after=2, limit=2)) == [3, 4]
        assert await store.last_seq("c") == 6

    async def test_paging_forward_and_backward_visits_every_message_once(
        self, store: MessageStore
    ) -> None:
        await store.append(msgs("c", range(1, 238)))

        forward: list[int] = []
        cursor = 0
        while page := await store.range("c", after=cursor, limit=50):
            forward += seqs_of(page)
            cursor = page[-1].seq
            assert len(forward) <= 237, "paging forward does not end"
        backward: list[int] = []
        cursor = await store.last_seq("c") + 1
        while page := await store.range("c", before=cursor, limit=50):
            backward = seqs_of(page) + backward
            cursor = page[0].seq
            assert len(backward) <= 237, "paging backward does not end"

        assert forward == list(range(1, 238))
        assert backward == list(range(1, 238))

    async def test_chats_are_isolated(self, store: MessageStore) -> None:
        for n in range(20):
            chat = f"chat-{n}"
            await store.append([msg(chat, s, body=f"{chat}/{s}") for s in range(1, n + 2)])

        for n in range(20):
            chat = f"chat-{n}"
            got = await store.range(chat, limit=100)
            assert seqs_of(got) == list(range(1, n + 2))
            assert all(m.chat_id == chat and m.body == f"{chat}/{m.seq}" for m in got)
            assert await store.last_seq(chat) == n + 1
        assert await store.last_seq("chat-") == 0
        assert await store.range("chat-1", after=2) == []

    async def test_find_client_msg(self, store: MessageStore) -> None:
        await store.append([msg("c", 1, sender="alice"), msg("c", 2, sender="bob")])
        await store.append([msg("other", 1, sender="alice")])

        found = await store.find_client_msg("c", "bob", "bob-2")
        assert found is not None
        assert (found.chat_id, found.seq, found.sender) == ("c", 2, "bob")
        assert await store.find_client_msg("c", "alice", "bob-2") is None
        assert await store.find_client_msg("c", "bob", "bob-1") is None
        assert await store.find_client_msg("elsewhere", "bob", "bob-2") is None
        in_other = await store.find_client_msg("other", "alice", "alice-1")
        assert in_other is not None
        assert in_other.chat_id == "other"

    async def test_data_survives_close_and_reopen(self, env: StoreEnv[MessageStore]) -> None:
        if not env.durable:
            pytest.skip("this backend keeps messages in memory only")
        first = await env.open()
        await first.append(msgs("c", range(1, 6)) + msgs("d", [1]))
        await first.aclose()

        again = await env.open()
        assert seqs_of(await again.range("c")) == [1, 2, 3, 4, 5]
        assert await again.last_seq("d") == 1
        assert await again.find_client_msg("c", "alice", "alice-3") == msg("c", 3)
        await again.append([msg("c", 3, body="replayed")])
        assert (await again.range("c", after=2, limit=1))[0].body == "message 3"

    async def test_aclose_is_idempotent_and_later_calls_raise(self, store: MessageStore) -> None:
        await store.append(msgs("c", [1]))
        await store.aclose()
        await store.aclose()

        with pytest.raises(ChatcoreClosed):
            await store.append(msgs("c", [2]))
        with pytest.raises(ChatcoreClosed):
            await store.range("c")
        with pytest.raises(ChatcoreClosed):
            await store.last_seq("c")
        with pytest.raises(ChatcoreClosed):
            await store.find_client_msg("c", "alice", "alice-1")

    async def test_async_with_closes(self, env: StoreEnv[MessageStore]) -> None:
        async with await env.open() as store:
            await store.append(msgs("c", [1]))
        with pytest.raises(ChatcoreClosed):
            await store.last_seq("c")

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        stored=st.sets(st.integers(1, 40), max_size=25),
        after=st.none() | st.integers(-1, 42),
        before=st.none() | st.integers(-1, 42),
        limit=st.integers(0, 30),
    )
    async def test_range_matches_a_model(
        self,
        store: MessageStore,
        stored: set[int],
        after: int | None,
        before: int | None,
        limit: int,
    ) -> None:
        chat = f"c-{uuid.uuid4().hex}"
        await store.append(msgs(chat, sorted(stored, key=lambda s: (s * 7) % 11)))

        inside = sorted(
            s for s in stored if (after is None or s > after) and (before is None or s < before)
        )
        expected = inside[:limit] if after is not None else inside[max(0, len(inside) - limit) :]
        assert seqs_of(await store.range(chat, after=after, before=before, limit=limit)) == expected
        assert await store.last_seq(chat) == max(stored, default=0)
