"""Group roles: the pure rules (plan_change) and the node enforcing them end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.backends import Backends
from chatcore.errors import InvalidRequest, NotMember
from chatcore.model import ChatInfo, ChatRoles
from chatcore.node import ChatNode, NodeOptions
from chatcore.pipeline.roles import MemberChange, plan_change


def group(*members: str, admins: tuple[str, ...] | None = None, visible: bool = True) -> ChatInfo:
    roles = ChatRoles(members[0], (members[0],) if admins is None else admins, visible)
    return ChatInfo("g", "group", members, "t", 0, roles)


# --- pure rules ---------------------------------------------------------------------


def test_only_admins_add_or_remove_others() -> None:
    chat = group("alice", "bob", "carol")
    with pytest.raises(InvalidRequest, match="only an admin"):
        plan_change(chat, "bob", MemberChange(add=["dave"]), last_seq=0)
    with pytest.raises(InvalidRequest, match="only an admin"):
        plan_change(chat, "bob", MemberChange(remove=["carol"]), last_seq=0)
    with pytest.raises(InvalidRequest, match="only an admin"):
        plan_change(chat, "bob", MemberChange(promote=["bob"]), last_seq=0)
    with pytest.raises(InvalidRequest, match="only an admin"):
        plan_change(chat, "bob", MemberChange(history_visible=False), last_seq=0)
    after = plan_change(chat, "alice", MemberChange(add=["dave"], remove=["carol"]), last_seq=0)
    assert after.members == ("alice", "bob", "dave")


def test_anyone_leaves_and_the_last_admin_leaving_promotes_the_longest_standing() -> None:
    chat = group("alice", "bob", "carol")
    left = plan_change(chat, "bob", MemberChange(remove=["bob"]), last_seq=0)
    assert left.members == ("alice", "carol") and left.admins() == ("alice",)
    gone = plan_change(chat, "alice", MemberChange(remove=["alice"]), last_seq=0)
    assert gone.members == ("bob", "carol")
    assert gone.admins() == ("bob",) and gone.creator() == "alice"


def test_the_creator_cannot_be_removed_or_demoted_by_another_admin() -> None:
    chat = group("alice", "bob", admins=("alice", "bob"))
    with pytest.raises(InvalidRequest, match="creator"):
        plan_change(chat, "bob", MemberChange(remove=["alice"]), last_seq=0)
    with pytest.raises(InvalidRequest, match="creator"):
        plan_change(chat, "bob", MemberChange(demote=["alice"]), last_seq=0)
    demoted = plan_change(chat, "alice", MemberChange(demote=["bob"]), last_seq=0)
    assert demoted.admins() == ("alice",)


def test_promote_needs_a_member_and_direct_chats_and_strangers_change_nothing() -> None:
    chat = group("alice", "bob")
    with pytest.raises(InvalidRequest, match="not a member"):
        plan_change(chat, "alice", MemberChange(promote=["zed"]), last_seq=0)
    with pytest.raises(NotMember):
        plan_change(chat, "zed", MemberChange(remove=["zed"]), last_seq=0)
    direct = ChatInfo("d", "direct", ("alice", "bob"))
    with pytest.raises(InvalidRequest, match="direct"):
        plan_change(direct, "alice", MemberChange(remove=["alice"]), last_seq=0)


def test_a_group_stored_before_roles_counts_its_first_member_as_admin() -> None:
    old = ChatInfo("g", "group", ("alice", "bob"))
    assert old.admins() == ("alice",) and old.creator() == "alice"
    with pytest.raises(InvalidRequest):
        plan_change(old, "bob", MemberChange(add=["carol"]), last_seq=0)


def test_hidden_history_records_where_each_new_member_starts() -> None:
    chat = group("alice", "bob", visible=False)
    after = plan_change(chat, "alice", MemberChange(add=["carol"]), last_seq=12)
    assert after.visible_after("carol") == 12 and after.visible_after("bob") == 0
    shown = plan_change(after, "alice", MemberChange(history_visible=True), last_seq=20)
    assert shown.visible_after("carol") == 12  # kept for who already joined
    again = plan_change(shown, "alice", MemberChange(add=["dave"]), last_seq=30)
    assert again.visible_after("dave") == 0


_users = st.sampled_from(["a", "b", "c", "d", "e"])
_changes = st.lists(
    st.tuples(
        _users,
        st.builds(
            MemberChange,
            add=st.lists(_users, max_size=2),
            remove=st.lists(_users, max_size=2),
            promote=st.lists(_users, max_size=1),
            demote=st.lists(_users, max_size=1),
        ),
    ),
    max_size=20,
)


@given(_changes)
def test_a_group_with_members_always_has_an_admin_among_them(
    changes: list[tuple[str, MemberChange]],
) -> None:
    chat = group("a", "b", "c")
    for user, change in changes:
        try:
            after = plan_change(chat, user, change, last_seq=0)
        except (InvalidRequest, NotMember):
            continue
        if change.add or [m for m in change.remove if m != user] or change.promote:
            assert chat.is_admin(user)
        chat = after
        if chat.members:
            assert chat.admins() and set(chat.admins()) <= set(chat.members)


# --- the node -----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    backends = (
        Backends.in_memory() if request.param == "memory" else Backends.embedded(tmp_path / "d")
    )
    async with ChatNode(backends, NodeOptions(partitions=2)) as node:
        yield node


@pytest.mark.anyio
async def test_node_enforces_roles_and_a_refused_change_changes_nothing(node: ChatNode) -> None:
    chat = await node.create_chat("alice", kind="group", members=["bob", "carol"], title="t")
    assert chat.admins() == ("alice",) and chat.creator() == "alice"
    with pytest.raises(InvalidRequest, match="only an admin"):
        await node.update_members("bob", chat.chat_id, remove=["alice"])
    with pytest.raises(InvalidRequest, match="only an admin"):
        await node.update_members("bob", chat.chat_id, add=["mallory"])
    assert (await node.chat("alice", chat.chat_id)).chat == chat

    promoted = await node.update_members("alice", chat.chat_id, promote=["bob"])
    assert promoted.admins() == ("alice", "bob")
    with pytest.raises(InvalidRequest, match="creator"):
        await node.update_members("bob", chat.chat_id, remove=["alice"])
    after = await node.update_members("bob", chat.chat_id, remove=["carol"], add=["dave"])
    assert after.members == ("alice", "bob", "dave")

    await node.leave("alice", chat.chat_id)
    left = await node.leave("bob", chat.chat_id)
    assert left.members == ("dave",) and left.admins() == ("dave",)
    assert (await node.chat("dave", chat.chat_id)).chat.admins() == ("dave",)


@pytest.mark.anyio
async def test_a_member_added_with_history_hidden_sees_only_what_follows(node: ChatNode) -> None:
    chat = await node.create_chat(
        "alice", kind="group", members=["bob"], title="t", history_visible=False
    )
    for i in range(3):
        await node.send("alice", chat.chat_id, client_msg_id=f"m{i}", body=f"old {i}")
    await node.settled()
    await node.update_members("alice", chat.chat_id, add=["carol"])
    await node.send("alice", chat.chat_id, client_msg_id="m3", body="new")
    await node.settled()

    page = await node.history("carol", chat.chat_id)
    assert [m.body for m in page.messages] == ["new"] and not page.has_more
    assert (await node.history("carol", chat.chat_id, before=4)).messages == []
    assert [m.seq for m in (await node.history("carol", chat.chat_id, after=0)).messages] == [4]
    assert len((await node.history("bob", chat.chat_id)).messages) == 4
    (state,) = [s for s in await node.chats("carol") if s.chat.chat_id == chat.chat_id]
    assert state.unread == 1
    synced = await node.sync("carol", {chat.chat_id: 0})
    assert [m.body for m in synced.messages] == ["new"]
