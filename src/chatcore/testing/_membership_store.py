"""``MembershipStore`` conformance: what every backend of the port must do."""

from __future__ import annotations

import uuid

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcore.errors import ChatcoreClosed, NotFound
from chatcore.model import ChatInfo, ChatRoles, direct_chat_id
from chatcore.store._base import MembershipStore
from chatcore.testing._backend import StoreEnv, StoreSuite

__all__ = ["MembershipStoreSuite"]


def group(chat_id: str, *members: str, title: str | None = "team") -> ChatInfo:
    return ChatInfo(chat_id, "group", members, title=title, created_ms=1_750_000_000_000)


_USERS = ["alice", "bob", "carol", "dave"]


_updates = st.lists(
    st.tuples(
        st.sampled_from(["c1", "c2", "c3"]),
        st.lists(st.sampled_from(_USERS), max_size=3),
        st.lists(st.sampled_from(_USERS), max_size=2),
    ),
    max_size=12,
)


class MembershipStoreSuite(StoreSuite[MembershipStore]):
    """The ``MembershipStore`` conformance suite. Subclass it in a test module as ``Test...``.

    Override the fixture ``make_store``: it returns an async callable giving a new,
    not yet entered ``MembershipStore`` over this test's own storage, empty at first (a
    fresh file, keyspace or key prefix). The suite enters and closes every instance.
    Set ``durable = True`` if a later instance of one test sees what earlier ones
    wrote; the restart tests run only then.
    """

    async def test_unknown_chat_and_user(self, store: MembershipStore) -> None:
        assert await store.get_chat("nope") is None
        assert await store.chats_of("nobody") == []

    async def test_create_then_get_keeps_every_field_and_member_order(
        self, store: MembershipStore
    ) -> None:
        chat = group("g1", "carol", "alice", "bob", title="Ops ✓")

        assert await store.create_chat(chat) == chat
        assert await store.get_chat("g1") == chat
        untitled = ChatInfo("g2", "group", ("zed",), title=None, created_ms=0)
        assert await store.create_chat(untitled) == untitled
        assert await store.get_chat("g2") == untitled

    async def test_get_chats_reads_a_batch_by_id(self, store: MembershipStore) -> None:
        ops = group("g1", "carol", "alice", title="Ops")
        dm = ChatInfo(direct_chat_id("alice", "bob"), "direct", ("alice", "bob"), None, 5)
        await store.create_chat(ops)
        await store.create_chat(dm)

        found = await store.get_chats(iter(["g1", "nope", dm.chat_id, "g1"]))

        assert found == {"g1": ops, dm.chat_id: dm}  # unknown ids left out, repeats once
        assert found == {c: await store.get_chat(c) for c in ("g1", dm.chat_id)}
        assert await store.get_chats([]) == {}
        assert await store.get_chats(["nope"]) == {}

    async def test_get_chats_reads_a_large_batch_with_roles(self, store: MembershipStore) -> None:
        # More ids than a backend may put in one query, some chats with roles of their
        # own, some missing: each found chat is the one get_chat returns.
        chats = [
            ChatInfo(
                f"g{i}",
                "group",
                ("alice", f"u{i}"),
                title=f"t{i}",
                created_ms=i,
                roles=ChatRoles("alice", ("alice",), i % 2 == 0, ((f"u{i}", i),))
                if i % 3 == 0
                else ChatRoles(),
            )
            for i in range(230)
        ]
        for chat in chats:
            await store.create_chat(chat)
        wanted = [f"g{i}" for i in range(240)]

        found = await store.get_chats(wanted)

        assert found == {c.chat_id: c for c in chats}
        assert found["g3"].roles.joined == (("u3", 3),)

    async def test_create_existing_returns_the_stored_chat_unchanged(
        self, store: MembershipStore
    ) -> None:
        first = group("g", "alice", "bob", title="first")
        await store.create_chat(first)

        again = await store.create_chat(group("g", "mallory", title="second"))
        assert again == first
        assert await store.get_chat("g") == first
        assert await store.chats_of("mallory") == []

    async def test_direct_chat_asked_again_returns_it(self, store: MembershipStore) -> None:
        chat_id = direct_chat_id("alice", "bob")
        created = await store.create_chat(
            ChatInfo(chat_id, "direct", ("alice", "bob"), created_ms=1000)
        )

        again = await store.create_chat(
            ChatInfo(chat_id, "direct", ("bob", "alice"), created_ms=2000)
        )
        assert again == created
        assert again.members == ("alice", "bob")
        assert again.created_ms == 1000
        assert await store.chats_of("alice") == [chat_id]
        assert await store.chats_of("bob") == [chat_id]

    async def test_repeated_members_are_stored_once(self, store: MembershipStore) -> None:
        created = await store.create_chat(group("g", "bob", "alice", "bob", "alice", "carol"))

        assert created.members == ("bob", "alice", "carol")
        assert await store.get_chat("g") == created
        assert await store.chats_of("bob") == ["g"]

    async def test_chat_with_no_members(self, store: MembershipStore) -> None:
        created = await store.create_chat(group("g"))

        assert created.members == ()
        assert await store.get_chat("g") == created
        added = await store.update_members("g", add=["alice"])
        assert added.members == ("alice",)

    async def test_add_appends_new_members_in_order(self, store: MembershipStore) -> None:
        await store.create_chat(group("g", "alice", "bob"))

        after = await store.update_members("g", add=["dave", "bob", "carol", "dave"])
        assert after.members == ("alice", "bob", "dave", "carol")
        assert after == group("g", "alice", "bob", "dave", "carol")
        assert await store.get_chat("g") == after

    async def test_remove_keeps_the_order_of_the_rest(self, store: MembershipStore) -> None:
        await store.create_chat(group("g", "alice", "bob", "carol", "dave"))

        after = await store.update_members("g", remove=["bob", "dave", "bob"])
        assert after.members == ("alice", "carol")
        assert await store.get_chat("g") == after
        assert await store.chats_of("bob") == []
        assert await store.chats_of("carol") == ["g"]

    async def test_noop_updates_change_nothing(self, store: MembershipStore) -> None:
        chat = await store.create_chat(group("g", "alice", "bob"))

        assert await store.update_members("g", add=["alice"]) == chat
        assert await store.update_members("g", remove=["zed"]) == chat
        assert await store.update_members("g") == chat
        assert await store.get_chat("g") == chat
        assert await store.chats_of("zed") == []

    async def test_removed_member_who_rejoins_goes_last(self, store: MembershipStore) -> None:
        await store.create_chat(group("g", "alice", "bob", "carol"))
        await store.update_members("g", remove=["alice"])

        after = await store.update_members("g", add=["alice"])
        assert after.members == ("bob", "carol", "alice")
        assert await store.get_chat("g") == after
        assert await store.chats_of("alice") == ["g"]

    async def test_add_and_remove_together_removes(self, store: MembershipStore) -> None:
        await store.create_chat(group("g", "alice", "bob"))

        after = await store.update_members("g", add=["carol", "dave"], remove=["bob", "carol"])
        assert after.members == ("alice", "dave")
        assert await store.chats_of("carol") == []
        assert await store.chats_of("bob") == []
        assert await store.chats_of("dave") == ["g"]

    async def test_update_of_unknown_chat_raises_not_found(self, store: MembershipStore) -> None:
        with pytest.raises(NotFound):
            await store.update_members("nope", add=["alice"])
        with pytest.raises(NotFound):
            await store.update_members("nope")

        assert await store.get_chat("nope") is None
        assert await store.chats_of("alice") == []

    async def test_membership_both_ways(self, store: MembershipStore) -> None:
        await store.create_chat(group("g1", "alice", "bob"))
        await store.create_chat(group("g2", "bob", "carol"))
        await store.create_chat(group("g0", "carol", "alice", "bob"))

        assert await store.chats_of("alice") == ["g0", "g1"]
        assert await store.chats_of("bob") == ["g0", "g1", "g2"]
        assert await store.chats_of("carol") == ["g0", "g2"]

        await store.update_members("g1", add=["carol"], remove=["alice"])
        await store.update_members("g2", remove=["bob"])

        assert await store.chats_of("alice") == ["g0"]
        assert await store.chats_of("bob") == ["g0", "g1"]
        assert await store.chats_of("carol") == ["g0", "g1", "g2"]

    async def test_many_chats_are_isolated(self, store: MembershipStore) -> None:
        for n in range(30):
            await store.create_chat(group(f"chat-{n:02}", f"user-{n}", "everyone"))
        await store.update_members("chat-07", add=["user-8"], remove=["user-7"])

        for n in range(30):
            chat = await store.get_chat(f"chat-{n:02}")
            assert chat is not None
            expected = ("everyone", "user-8") if n == 7 else (f"user-{n}", "everyone")
            assert chat.members == expected
        assert await store.chats_of("everyone") == [f"chat-{n:02}" for n in range(30)]
        assert await store.chats_of("user-8") == ["chat-07", "chat-08"]
        assert await store.chats_of("user-7") == []

    async def test_chats_survive_close_and_reopen(self, env: StoreEnv[MembershipStore]) -> None:
        if not env.durable:
            pytest.skip("this backend keeps chats in memory only")
        first = await env.open()
        await first.create_chat(group("g", "carol", "alice", "bob"))
        await first.update_members("g", add=["dave"], remove=["alice"])
        await first.aclose()

        again = await env.open()
        assert await again.get_chat("g") == group("g", "carol", "bob", "dave")
        assert await again.chats_of("dave") == ["g"]
        assert await again.chats_of("alice") == []
        after = await again.update_members("g", add=["erin"])
        assert after.members == ("carol", "bob", "dave", "erin")

    async def test_roles_are_stored_with_the_chat_and_kept_by_member_updates(
        self, store: MembershipStore
    ) -> None:
        roles = ChatRoles("alice", ("alice", "bob"), history_visible=False, joined=(("bob", 7),))
        chat = ChatInfo("g", "group", ("alice", "bob"), "t", 5, roles)

        assert await store.create_chat(chat) == chat
        assert await store.get_chat("g") == chat
        again = ChatInfo("g", "group", ("zed",), "other", 9)
        assert await store.create_chat(again) == chat  # exists: the stored one, roles too
        updated = await store.update_members("g", add=["carol"], remove=["bob"])
        assert updated.roles == roles
        assert (await store.get_chat("g")) == updated

    async def test_set_roles_replaces_them(self, store: MembershipStore) -> None:
        assert (await store.create_chat(group("g", "alice", "bob"))).roles == ChatRoles()

        first = ChatRoles("alice", ("alice",))
        second = ChatRoles("alice", ("bob",), history_visible=False, joined=(("bob", 3),))
        assert (await store.set_roles("g", first)).roles == first
        got = await store.set_roles("g", second)
        assert got == ChatInfo("g", "group", ("alice", "bob"), "team", 1_750_000_000_000, second)
        assert await store.get_chat("g") == got
        with pytest.raises(NotFound):
            await store.set_roles("nope", first)
        assert await store.get_chat("nope") is None

    async def test_set_roles_with_expected_is_a_compare_and_set(
        self, store: MembershipStore
    ) -> None:
        await store.create_chat(group("g", "alice", "bob"))
        first = ChatRoles("alice", ("alice",))
        got = await store.set_roles("g", first, expected=ChatRoles())
        assert got.roles == first
        # Planned on roles that are no longer there: nothing changes, the stored ones return.
        stale = await store.set_roles("g", ChatRoles("alice", ("bob",)), expected=ChatRoles())
        assert stale == got
        assert await store.get_chat("g") == got
        with pytest.raises(NotFound):
            await store.set_roles("nope", first, expected=ChatRoles())

    async def test_concurrent_compare_and_sets_of_roles_apply_once(
        self, store: MembershipStore
    ) -> None:
        """Admins changing roles at once from the same reading: exactly one change wins."""
        await store.create_chat(group("g", "alice", "bob", "carol", "dave"))
        base = ChatRoles("alice", ("alice",))
        await store.set_roles("g", base)
        wanted = [ChatRoles("alice", ("alice", m)) for m in ("bob", "carol", "dave")]
        results: list[tuple[ChatRoles, ChatInfo]] = []

        async def change(roles: ChatRoles) -> None:
            results.append((roles, await store.set_roles("g", roles, expected=base)))

        async with anyio.create_task_group() as tg:
            for roles in wanted:
                tg.start_soon(change, roles)
        won = [roles for roles, chat in results if chat.roles == roles]
        assert len(won) == 1, results
        stored = await store.get_chat("g")
        assert stored is not None
        assert stored.roles == won[0]

    async def test_aclose_is_idempotent_and_later_calls_raise(self, store: MembershipStore) -> None:
        await store.create_chat(group("g", "alice"))
        await store.aclose()
        await store.aclose()

        with pytest.raises(ChatcoreClosed):
            await store.create_chat(group("h", "alice"))
        with pytest.raises(ChatcoreClosed):
            await store.get_chat("g")
        with pytest.raises(ChatcoreClosed):
            await store.update_members("g", add=["bob"])
        with pytest.raises(ChatcoreClosed):
            await store.chats_of("alice")
        with pytest.raises(ChatcoreClosed):
            await store.set_roles("g", ChatRoles())

    @settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(initial=st.lists(st.sampled_from(_USERS), max_size=4), updates=_updates)
    async def test_updates_match_a_model_both_ways(
        self,
        store: MembershipStore,
        initial: list[str],
        updates: list[tuple[str, list[str], list[str]]],
    ) -> None:
        prefix = f"{uuid.uuid4().hex}-"
        users = {u: prefix + u for u in _USERS}
        model: dict[str, list[str]] = {}
        for name in ["c1", "c2", "c3"]:
            members = list(dict.fromkeys(users[u] for u in initial))
            model[name] = members
            await store.create_chat(group(prefix + name, *members))

        for name, add, remove in updates:
            added = [users[u] for u in add]
            removed = {users[u] for u in remove}
            members = model[name] + [u for u in dict.fromkeys(added) if u not in model[name]]
            model[name] = [u for u in members if u not in removed]
            got = await store.update_members(
                prefix + name, add=added, remove=[users[u] for u in remove]
            )
            assert list(got.members) == model[name]

        for name, members in model.items():
            chat = await store.get_chat(prefix + name)
            assert chat is not None
            assert list(chat.members) == members
        for user in users.values():
            expected = sorted(prefix + name for name, members in model.items() if user in members)
            assert await store.chats_of(user) == expected
