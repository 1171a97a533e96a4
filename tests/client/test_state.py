"""The client's pure bookkeeping: in-order delivery, gaps, skips, the send and receipt outboxes."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.client._state import Fill, Outbox, ReceiptOutbox, Skip, Timelines
from chatcore.protocol import Message, Send


def msg(seq: int, chat: str = "c1") -> Message:
    return Message(
        chat=chat,
        seq=seq,
        message_id=str(1000 + seq),
        sender="alice",
        client_msg_id=f"m-{chat}-{seq}",
        kind="text",
        body=f"body {seq}",
        ts=1_700_000_000_000 + seq,
    )


def seqs(messages: list[Message]) -> list[int]:
    return [m.seq for m in messages]


def send(cmid: str, chat: str = "c1") -> Send:
    return Send(id=0, chat=chat, client_msg_id=cmid, kind="text", body=cmid)


# --- Timelines: order and duplicates --------------------------------------------------


def test_in_order_messages_are_ready_at_once() -> None:
    t = Timelines()
    for seq in (1, 2, 3):
        assert t.offer(msg(seq))
    assert seqs(list(t.drain_ready())) == [1, 2, 3]
    assert t.cursor("c1") == 3
    assert t.gaps() == []


def test_a_message_after_a_gap_waits_for_the_gap() -> None:
    t = Timelines()
    t.offer(msg(1))
    t.offer(msg(3))
    assert seqs(list(t.drain_ready())) == [1]
    assert t.cursor("c1") == 1
    assert t.gaps() == ["c1"]
    t.offer(msg(2))
    assert seqs(list(t.drain_ready())) == [2, 3]
    assert t.gaps() == []


def test_duplicates_are_refused_before_and_after_delivery() -> None:
    t = Timelines()
    assert t.offer(msg(2))
    assert not t.offer(msg(2)), "buffered already"
    t.offer(msg(1))
    assert seqs(list(t.drain_ready())) == [1, 2]
    assert not t.offer(msg(1)), "delivered already"
    assert not t.offer(msg(2))
    assert list(t.drain_ready()) == []


def test_chats_are_independent() -> None:
    t = Timelines()
    t.offer(msg(1, "a"))
    t.offer(msg(2, "b"))
    ready = list(t.drain_ready())
    assert [(m.chat, m.seq) for m in ready] == [("a", 1)]
    assert t.gaps() == ["b"]
    assert t.cursors() == {"a": 1, "b": 0}


def test_restored_cursors_skip_what_the_app_holds() -> None:
    t = Timelines({"c1": 5})
    assert not t.offer(msg(5))
    assert not t.offer(msg(4))
    assert t.offer(msg(6))
    assert seqs(list(t.drain_ready())) == [6]


def test_negative_restored_cursor_is_refused() -> None:
    with pytest.raises(ValueError):
        Timelines({"c1": -1})


@given(
    st.integers(min_value=1, max_value=60).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.permutations(list(range(1, n + 1))),
            st.lists(st.integers(min_value=1, max_value=n), max_size=30),
        )
    )
)
@settings(max_examples=200, deadline=None)
def test_any_arrival_order_with_duplicates_delivers_each_seq_once_in_order(
    case: tuple[int, list[int], list[int]],
) -> None:
    n, order, repeats = case
    t = Timelines(backfill_limit=None)
    delivered: list[int] = []
    for seq in [*order[: n // 2], *repeats, *order[n // 2 :], *repeats]:
        t.offer(msg(seq))
        delivered.extend(seqs(list(t.drain_ready())))
    assert delivered == list(range(1, n + 1))
    assert t.gaps() == []


# --- Timelines: gap filling -----------------------------------------------------------


def test_fill_asks_for_the_range_between_cursor_and_first_buffered() -> None:
    t = Timelines()
    t.offer(msg(1))
    list(t.drain_ready())
    t.offer(msg(8))
    assert t.next_fill("c1", page=100) == Fill("c1", after=1, limit=6)  # 2..7


def test_fill_is_bounded_by_the_page_size() -> None:
    t = Timelines()
    t.observe("c1", 500)
    assert t.next_fill("c1", page=50) == Fill("c1", after=0, limit=50)


def test_fill_up_to_a_known_last_seq_without_buffered_messages() -> None:
    t = Timelines({"c1": 10})
    t.observe("c1", 14)
    assert t.gaps() == ["c1"]
    assert t.next_fill("c1") == Fill("c1", after=10, limit=4)


def test_no_fill_without_a_gap() -> None:
    t = Timelines({"c1": 3})
    t.observe("c1", 3)
    assert t.next_fill("c1") is None
    assert t.next_fill("unknown") is None
    t.offer(msg(4))  # ready, not a gap
    assert t.next_fill("c1") is None


def test_observe_never_lowers_what_is_known() -> None:
    t = Timelines()
    t.observe("c1", 9)
    t.observe("c1", 4)
    assert t.known_last("c1") == 9
    assert t.behind() == {"c1": 0}


def test_a_page_fills_the_gap_in_order() -> None:
    t = Timelines()
    t.offer(msg(5))
    fill = t.next_fill("c1")
    assert fill == Fill("c1", after=0, limit=4)
    assert t.offer_all(msg(s) for s in range(1, 5)) == 4
    assert seqs(list(t.drain_ready())) == [1, 2, 3, 4, 5]


def test_far_behind_skips_to_the_backfill_limit_once() -> None:
    t = Timelines({"c1": 10}, backfill_limit=100)
    t.offer(msg(12))  # buffered below the skip point: dropped
    t.offer(msg(2000))
    t.observe("c1", 2000)
    skip = t.next_fill("c1")
    assert skip == Skip("c1", after=10, until=1900)
    assert t.cursor("c1") == 1900
    assert t.next_fill("c1") == Fill("c1", after=1900, limit=99)
    assert not t.offer(msg(12))


def test_skip_makes_a_buffered_successor_ready() -> None:
    t = Timelines(backfill_limit=2)
    t.offer(msg(9))
    t.offer(msg(10))
    assert t.next_fill("c1") == Skip("c1", after=0, until=8)
    assert seqs(list(t.drain_ready())) == [9, 10]


def test_backfill_limit_zero_delivers_only_new_messages() -> None:
    t = Timelines(backfill_limit=0)
    t.observe("c1", 50)
    assert t.next_fill("c1") == Skip("c1", after=0, until=50)
    t.offer(msg(51))
    assert seqs(list(t.drain_ready())) == [51]


def test_no_backfill_limit_fetches_everything() -> None:
    t = Timelines(backfill_limit=None)
    t.observe("c1", 10_000)
    assert t.next_fill("c1", page=200) == Fill("c1", after=0, limit=200)


def test_buffer_is_bounded_and_drops_the_newest() -> None:
    t = Timelines(max_buffered=3, backfill_limit=None)
    for seq in (5, 6, 7):
        assert t.offer(msg(seq))
    assert not t.offer(msg(9)), "beyond the highest buffered: dropped"
    assert t.known_last("c1") == 9, "a dropped message is still known"
    assert t.offer(msg(3)), "lower than the highest: evicts the highest (7)"
    delivered = []
    for seq in (1, 2, 4):
        t.offer(msg(seq))
        delivered += seqs(list(t.drain_ready()))
    assert delivered == [1, 2, 3, 4, 5]  # 2 evicted 6 as well
    assert t.next_fill("c1") == Fill("c1", after=5, limit=4)  # 6..9 are fetched again


def test_forget_drops_a_chat() -> None:
    t = Timelines()
    t.offer(msg(2))
    t.forget("c1")
    assert "c1" not in t
    assert t.gaps() == []
    assert t.cursors() == {}
    t.forget("never-known")


@pytest.mark.parametrize("page", [0, 201])
def test_page_size_is_checked(page: int) -> None:
    with pytest.raises(ValueError):
        Timelines().next_fill("c1", page=page)


@pytest.mark.parametrize("settings", [{"max_buffered": 0}, {"backfill_limit": -1}])
def test_bad_timeline_settings_are_refused(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Timelines(**settings)  # type: ignore[arg-type]


# --- Outbox ---------------------------------------------------------------------------


def cmids(box: Outbox, epoch: int, now: float = 0.0) -> list[str]:
    """What a sender would transmit on ``epoch`` at ``now``, oldest first."""
    out = []
    while (entry := box.next_due(epoch, now=now)) is not None:
        out.append(entry.frame.client_msg_id)
        box.transmit(entry.frame.client_msg_id, epoch=epoch, request_id=len(out))
    return out


def test_outbox_keeps_order_and_refuses_a_pending_id() -> None:
    box = Outbox()
    assert box.add(send("a"))
    assert box.add(send("b"))
    assert not box.add(send("a"))
    assert len(box) == 2
    assert cmids(box, epoch=1) == ["a", "b"]
    assert box.next_due(1) is None, "all went out on session 1"
    assert box.next_due_at(1) is None


def test_transmission_is_per_session_and_keeps_the_client_msg_id() -> None:
    box = Outbox()
    box.add(send("a"))
    box.add(send("b"))
    frame = box.transmit("a", epoch=1, request_id=10)
    assert (frame.id, frame.client_msg_id, frame.body) == (10, "a", "a")
    entry = box.next_due(1)
    assert entry is not None and entry.frame.client_msg_id == "b"
    # the connection drops: on session 2 both go out again, oldest first, same ids
    again = box.transmit("a", epoch=2, request_id=11)
    assert again.client_msg_id == "a"
    assert box.by_request(11) == "a"
    assert box.by_request(10) is None, "an old request id no longer maps"
    assert cmids(box, epoch=2) == ["b"]


def test_only_a_second_transmission_is_marked_as_a_retry() -> None:
    box = Outbox()
    box.add(send("a"))
    assert not box.transmit("a", epoch=1, request_id=1).retry, "a first send skips the lookup"
    assert box.transmit("a", epoch=2, request_id=2).retry, "a resend asks for the earlier copy"
    box.add(msgspec.structs.replace(send("b"), retry=True))  # the app passed its own id
    assert box.transmit("b", epoch=2, request_id=3).retry


def test_a_deferred_send_holds_back_everything_queued_after_it() -> None:
    box = Outbox()
    for cmid in "abc":
        box.add(send(cmid))
    assert cmids(box, epoch=1, now=0.0) == ["a", "b", "c"]
    box.defer("b", until=5.0)  # rate limited; a and c were taken
    box.remove("a")
    box.remove("c")
    box.add(send("d"))
    assert box.next_due(1, now=4.9) is None, "d waits behind b"
    assert box.next_due_at(1) == 5.0
    assert cmids(box, epoch=1, now=5.0) == ["b", "d"]


def test_defer_never_brings_a_send_forward_and_ignores_unknown_ids() -> None:
    box = Outbox()
    box.add(send("a"))
    box.defer("a", until=9.0)
    box.defer("a", until=3.0)
    assert box.next_due_at(1) == 9.0
    box.defer("unknown", until=1.0)
    assert len(box) == 1


def test_remove_forgets_the_send_and_its_request_id() -> None:
    box = Outbox()
    box.add(send("a"))
    box.transmit("a", epoch=1, request_id=5)
    removed = box.remove("a")
    assert removed is not None and removed.request_id == 5
    assert "a" not in box
    assert box.by_request(5) is None
    assert box.remove("a") is None
    with pytest.raises(KeyError):
        box.transmit("a", epoch=1, request_id=6)


# --- ReceiptOutbox --------------------------------------------------------------------


def test_receipts_keep_the_highest_per_chat_and_status() -> None:
    box = ReceiptOutbox()
    box.put("c1", "read", 5)
    box.put("c1", "read", 3)
    box.put("c1", "delivered", 7)
    box.put("c2", "read", 1)
    assert sorted(box.take()) == [("c1", "delivered", 7), ("c1", "read", 5), ("c2", "read", 1)]
    assert box.take() == []
    assert len(box) == 0


def test_receipts_put_back_merge_with_newer_ones() -> None:
    box = ReceiptOutbox()
    box.put("c1", "read", 4)
    taken = box.take()
    box.put("c1", "read", 9)  # the app read more while the send failed
    for chat, status, seq in taken:
        box.put(chat, status, seq)
    assert box.take() == [("c1", "read", 9)]
