"""Message lifecycle: the pure rules (check_change, applied, fold) and the node end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.backends import Backends
from chatcore.errors import FrameTooLarge, InvalidRequest, NotFound
from chatcore.events import MessageEvent
from chatcore.model import ChatInfo, ChatRoles, EventKind, StoredMessage
from chatcore.node import ChatNode, NodeOptions
from chatcore.offline.memory import MemoryPushNotifier
from chatcore.pipeline.lifecycle import LifecycleLimits, applied, check_change, fold

GROUP = ChatInfo("g", "group", ("alice", "bob", "carol"), "t", 0, ChatRoles("alice", ("alice",)))


def msg(seq: int, sender: str = "bob", body: str = "hi", ts: int = 1000) -> StoredMessage:
    return StoredMessage("g", seq, seq, sender, f"c{seq}", "text", body, ts)


def event(
    seq: int, kind: EventKind, target: int, sender: str = "bob", body: str = ""
) -> StoredMessage:
    return msgspec.structs.replace(msg(seq, sender, body, ts=2000), kind=kind, target=target)


# --- pure rules ---------------------------------------------------------------------


def test_only_the_author_edits_within_the_window() -> None:
    m = msg(1)
    check_change(GROUP, "bob", m, "edit", "fixed", now_ms=5000)
    with pytest.raises(InvalidRequest, match="only the author"):
        check_change(GROUP, "alice", m, "edit", "mine now", now_ms=5000)
    limits = LifecycleLimits(edit_window_ms=1000)
    check_change(GROUP, "bob", m, "edit", "fixed", now_ms=2000, limits=limits)
    with pytest.raises(InvalidRequest, match="edited for 1000 ms"):
        check_change(GROUP, "bob", m, "edit", "late", now_ms=2001, limits=limits)
    with pytest.raises(FrameTooLarge):
        check_change(GROUP, "bob", m, "edit", "x" * 20_000, now_ms=2000)
    with pytest.raises(InvalidRequest, match="needs a body"):
        check_change(GROUP, "bob", m, "edit", "", now_ms=2000)


def test_the_author_or_a_group_admin_deletes() -> None:
    m = msg(1)
    check_change(GROUP, "bob", m, "delete", "", now_ms=0)
    check_change(GROUP, "alice", m, "delete", "", now_ms=0)  # the admin
    with pytest.raises(InvalidRequest, match="admin"):
        check_change(GROUP, "carol", m, "delete", "", now_ms=0)
    direct = ChatInfo("d", "direct", ("alice", "bob"))
    with pytest.raises(InvalidRequest):
        check_change(direct, "alice", m, "delete", "", now_ms=0)


def test_missing_targets_events_and_tombstones_are_refused() -> None:
    with pytest.raises(NotFound):
        check_change(GROUP, "bob", None, "react", "👍", now_ms=0)
    with pytest.raises(NotFound):
        check_change(GROUP, "bob", event(2, "react", 1, body="👍"), "react", "👍", now_ms=0)
    gone = applied(msg(1), event(2, "delete", 1))
    for kind in ("edit", "delete", "react"):
        with pytest.raises(InvalidRequest, match="deleted"):
            check_change(GROUP, "bob", gone, kind, "x", now_ms=0)


@pytest.mark.parametrize("emoji", ["", "a b", "\x00", "🙂" * 17])
def test_bad_reactions_are_refused(emoji: str) -> None:
    with pytest.raises(InvalidRequest):
        check_change(GROUP, "carol", msg(1), "react", emoji, now_ms=0)


def test_a_message_holds_a_bounded_number_of_distinct_reactions() -> None:
    m = msg(1)
    limits = LifecycleLimits(max_reactions=2)
    for i, emoji in enumerate(["👍", "🎉"]):
        m = applied(m, event(2 + i, "react", 1, "carol", emoji))
    check_change(GROUP, "bob", m, "react", "👍", now_ms=0, limits=limits)  # one in use
    with pytest.raises(InvalidRequest, match="at most 2"):
        check_change(GROUP, "bob", m, "react", "😀", now_ms=0, limits=limits)


def test_applying_events_gives_the_current_state() -> None:
    m = msg(1, body="draft")
    m = applied(m, event(2, "edit", 1, body="final"))
    m = applied(m, event(3, "react", 1, "carol", "👍"))
    m = applied(m, event(4, "react", 1, "alice", "👍"))
    m = applied(m, event(5, "react", 1, "alice", "🎉"))
    m = applied(m, event(6, "unreact", 1, "alice", "🎉"))
    assert (m.body, m.edited_ts, m.changed_seq) == ("final", 2000, 6)
    assert m.reactions == (("👍", ("carol", "alice")),)
    assert applied(m, event(3, "react", 1, "zed", "👍")) == m  # already applied
    assert applied(m, event(7, "edit", 1, "mallory", "forged")).body == "final"
    gone = applied(m, event(8, "delete", 1, "alice"))
    assert (gone.deleted, gone.body, gone.reactions) == (True, "", ())
    assert applied(gone, event(9, "edit", 1, body="back")).body == ""


_events = st.lists(
    st.tuples(
        st.sampled_from(["edit", "delete", "react", "unreact"]),
        st.sampled_from(["bob", "carol"]),
        st.sampled_from(["👍", "🎉"]),
    ),
    max_size=12,
)


@given(_events, st.data())
def test_applying_is_idempotent_and_fold_matches_one_by_one(
    events: list[tuple[EventKind, str, str]], data: st.DataObject
) -> None:
    target = msg(1)
    stream = [event(2 + i, kind, 1, who, emoji) for i, (kind, who, emoji) in enumerate(events)]
    expected = target
    for e in stream:
        expected = applied(expected, e)
    assert fold([target, *stream])[0] == expected
    replayed = expected
    for e in data.draw(st.permutations(stream)):  # a replay of any of them changes nothing
        replayed = applied(replayed, e)
    assert replayed == expected
    assert fold([expected, *stream])[0] == expected


# --- the node -----------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatNode]:
    backends = (
        Backends.in_memory() if request.param == "memory" else Backends.embedded(tmp_path / "d")
    )
    backends.push = MemoryPushNotifier()
    async with ChatNode(backends, NodeOptions(partitions=2, hot_cache_per_chat=3)) as node:
        yield node


@pytest.mark.anyio
async def test_events_are_sequenced_and_history_shows_the_current_state(node: ChatNode) -> None:
    chat = (await node.create_chat("alice", kind="group", members=["bob", "carol"])).chat_id
    async with node.connect("carol", "phone") as carol:
        for i in range(4):
            await node.send("bob", chat, client_msg_id=f"m{i}", body=f"m{i}")
        await node.settled()
        await node.edit("bob", chat, 1, "m0, fixed")
        await node.react("carol", chat, 1, "👍")
        await node.react("alice", chat, 2, "🎉")
        await node.react("alice", chat, 2, "🎉", remove=True)
        await node.delete("alice", chat, 3)  # the admin
        await node.settled()
        got: list[StoredMessage] = []
        with anyio.fail_after(5):
            while len(got) < 9:
                event = await carol.receive()
                if isinstance(event, MessageEvent):
                    got.append(event.message)
    assert [m.seq for m in got] == list(range(1, 10))  # contiguous, ordered with messages
    assert [(m.kind, m.target) for m in got[4:]] == [
        ("edit", 1),
        ("react", 1),
        ("react", 2),
        ("unreact", 2),
        ("delete", 3),
    ]
    for limit in (3, 9):  # from the HotCache (it keeps 3) and from the store
        page = await node.history("carol", chat, limit=limit)
        by_seq = {m.seq: m for m in page.messages}
        if 1 in by_seq:
            first = by_seq[1]
            assert (first.body, first.reactions) == ("m0, fixed", (("👍", ("carol",)),))
            assert first.edited_ts > 0
            assert by_seq[2].reactions == ()
            assert by_seq[3].deleted and by_seq[3].body == ""
    page = await node.history("carol", chat, after=0, limit=3)
    assert page.messages[0].body == "m0, fixed" and page.messages[2].deleted
    synced = await node.sync("carol", {chat: 0})
    assert synced.messages[0].body == "m0, fixed"
    (state,) = [s for s in await node.chats("carol") if s.chat.chat_id == chat]
    assert state.last_seq == 9 and state.unread == 4  # the events are not unread


@pytest.mark.anyio
async def test_unread_ignores_events_after_the_read_watermark(node: ChatNode) -> None:
    chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
    await node.send("alice", chat, client_msg_id="a", body="one")
    await node.send("alice", chat, client_msg_id="b", body="two")
    await node.settled()
    await node.receipt("bob", chat, "read", 1)
    await node.edit("alice", chat, 2, "two!")
    await node.react("alice", chat, 1, "👍")
    await node.send("alice", chat, client_msg_id="c", body="three")
    await node.settled()
    assert (await node.chat("bob", chat)).unread == 2  # seq 2 and 5, not the events
    await node.receipt("bob", chat, "read", 5)
    await node.react("alice", chat, 5, "👀")
    await node.settled()
    assert (await node.chat("bob", chat)).unread == 0
    assert (await node.chat("alice", chat)).unread == 0


@pytest.mark.anyio
async def test_bad_changes_are_refused_and_change_nothing(node: ChatNode) -> None:
    chat = (await node.create_chat("alice", kind="group", members=["bob", "carol"])).chat_id
    await node.send("bob", chat, client_msg_id="m", body="bob's")
    await node.settled()
    with pytest.raises(InvalidRequest, match="only the author"):
        await node.edit("carol", chat, 1, "carol's now")
    with pytest.raises(InvalidRequest, match="admin"):
        await node.delete("carol", chat, 1)
    with pytest.raises(NotFound):
        await node.react("carol", chat, 7, "👍")
    with pytest.raises(InvalidRequest):
        await node.react("carol", chat, 1, "not one")
    await node.settled()
    assert await node.last_seq(chat) == 1
    (m,) = (await node.history("bob", chat)).messages
    assert (m.body, m.edited_ts, m.reactions) == ("bob's", 0, ())


@pytest.mark.anyio
async def test_the_edit_window_is_an_option(tmp_path: Path) -> None:
    async with ChatNode(Backends.in_memory(), NodeOptions(partitions=1, edit_window_s=0)) as node:
        chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
        await node.send("alice", chat, client_msg_id="m", body="x")
        await node.settled()
        with pytest.raises(InvalidRequest, match="edited for 0 ms"):
            await node.edit("alice", chat, 1, "y")


@pytest.mark.anyio
async def test_changes_are_not_recorded_as_missed_nor_pushed(node: ChatNode) -> None:
    chat = (await node.create_chat("alice", kind="direct", members=["bob"])).chat_id
    await node.send("alice", chat, client_msg_id="m", body="x")
    await node.settled()
    before = await node.backends.offline.pending("bob")
    await node.react("alice", chat, 1, "👍")
    await node.edit("alice", chat, 1, "y")
    await node.send("alice", chat, client_msg_id="n", body="z")  # delivered after both
    await node.settled()
    (pending,) = await node.backends.offline.pending("bob")
    assert [p.last_seq for p in before] == [1] and pending.last_seq == 4
    assert pending.count == 2  # the two messages, not the changes


def test_the_sequencer_counts_messages_not_events_and_restores_old_changelogs() -> None:
    from chatcore.pipeline.records import Submitted
    from chatcore.pipeline.sequencer import PartitionState

    state = PartitionState(window_ms=1000, max_entries=10)

    def sub(i: int, kind: EventKind | None = None) -> Submitted:
        return Submitted(i, "c", "bob", f"m{i}", kind or "text", "x", 0, target=1 if kind else 0)

    counted = []
    kinds: list[EventKind | None] = [None, "react", None, "edit", "delete", None]
    for i, kind in enumerate(kinds):
        m = state.admit(sub(i, kind), now_ms=0)
        assert m is not None
        counted.append((m.seq, m.counted))
    assert counted == [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 3)]
    changes = dict(state.take_changes())
    restored = PartitionState.restore(changes, now_ms=0, window_ms=1000, max_entries=10)
    assert (restored.last_seq["c"], restored.counted["c"]) == (6, 3)
    old = {k: (b"7" if v.startswith(b"6/") else v) for k, v in changes.items()}  # no count
    again = PartitionState.restore(old, now_ms=0, window_ms=1000, max_entries=10)
    assert (again.last_seq["c"], again.counted["c"]) == (7, 7)
    nxt = again.admit(sub(99, "react"), now_ms=0)
    assert nxt is not None and (nxt.seq, nxt.counted) == (8, 7)


@pytest.mark.anyio
async def test_who_joined_later_gets_no_changes_to_hidden_history(node: ChatNode) -> None:
    chat = await node.create_chat(
        "alice", kind="group", members=["bob"], title="t", history_visible=False
    )
    await node.send("alice", chat.chat_id, client_msg_id="old", body="before carol")
    await node.settled()
    await node.update_members("alice", chat.chat_id, add=["carol"])
    async with node.connect("carol", "phone") as carol:
        await node.edit("alice", chat.chat_id, 1, "secret edit")
        await node.send("alice", chat.chat_id, client_msg_id="new", body="hi carol")
        await node.settled()
        with anyio.fail_after(5):
            while True:
                event = await carol.receive()
                if isinstance(event, MessageEvent):
                    break
    assert event.message.body == "hi carol"  # the edit of a message before her: not sent
    with pytest.raises(NotFound):
        await node.react("carol", chat.chat_id, 1, "👀")  # not hers to see
    page = await node.history("carol", chat.chat_id, after=0)
    assert [(m.seq, m.kind, m.body) for m in page.messages] == [
        (2, "edit", ""),
        (3, "text", "hi carol"),
    ]
