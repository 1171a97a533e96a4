from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.model import Watermarks
from chatcore.receipts import (
    MessageStatus,
    ReceiptCounts,
    advance,
    receipt_counts,
    receipt_counts_many,
    status_of,
    statuses,
    unread_count,
)


def wm(user: str, delivered: int = 0, read: int = 0) -> Watermarks:
    return Watermarks(chat_id="c1", user=user, delivered_seq=delivered, read_seq=read)


def marks(*items: Watermarks) -> dict[str, Watermarks]:
    return {m.user: m for m in items}


# --- direct chats --------------------------------------------------------------


def test_direct_chat_goes_sent_delivered_read() -> None:
    members = ["alice", "bob"]
    bob = wm("bob")
    assert status_of(3, "alice", members, marks(bob)) == "sent"

    delivered = advance(bob, delivered_seq=3, now_ms=1)
    assert delivered is not None
    assert status_of(3, "alice", members, marks(delivered)) == "delivered"
    assert status_of(4, "alice", members, marks(delivered)) == "sent"

    read = advance(delivered, read_seq=3, now_ms=2)
    assert read is not None
    assert status_of(3, "alice", members, marks(read)) == "read"
    assert status_of(1, "alice", members, marks(read)) == "read"


def test_status_depends_on_the_other_member_not_the_sender() -> None:
    members = ["alice", "bob"]
    watermarks = marks(wm("alice", 10, 10), wm("bob", 4, 2))

    assert status_of(2, "alice", members, watermarks) == "read"
    assert status_of(3, "alice", members, watermarks) == "delivered"
    assert status_of(5, "alice", members, watermarks) == "sent"
    assert status_of(9, "bob", members, watermarks) == "read"


def test_missing_watermarks_mean_nothing_received() -> None:
    assert status_of(1, "alice", ["alice", "bob"], {}) == "sent"


def test_read_above_delivered_counts_as_delivered() -> None:
    watermarks = marks(wm("bob", delivered=1, read=5))

    assert status_of(4, "alice", ["alice", "bob"], watermarks) == "read"
    assert receipt_counts(4, "alice", ["alice", "bob"], watermarks) == ReceiptCounts(1, 1, 1)


def test_alone_in_a_chat_stays_sent() -> None:
    watermarks = marks(wm("alice", 10, 10))

    assert status_of(1, "alice", ["alice"], watermarks) == "sent"
    assert statuses([1, 2], "alice", [], watermarks) == ["sent", "sent"]
    assert receipt_counts(1, "alice", ["alice"], watermarks) == ReceiptCounts(0, 0, 0)
    assert receipt_counts_many([1, 2], "alice", ["alice"], watermarks) == [
        ReceiptCounts(0, 0, 0),
        ReceiptCounts(0, 0, 0),
    ]


# --- groups --------------------------------------------------------------------

GROUP = ["alice", "bob", "carol", "dave"]
GROUP_MARKS = marks(wm("alice", 9, 9), wm("bob", 8, 6), wm("carol", 7, 3), wm("dave", 5, 5))


def test_group_counts_exclude_the_sender() -> None:
    assert receipt_counts(5, "alice", GROUP, GROUP_MARKS) == ReceiptCounts(3, 2, 3)
    assert receipt_counts(6, "alice", GROUP, GROUP_MARKS) == ReceiptCounts(2, 1, 3)
    assert receipt_counts(9, "alice", GROUP, GROUP_MARKS) == ReceiptCounts(0, 0, 3)
    assert receipt_counts(6, "bob", GROUP, GROUP_MARKS) == ReceiptCounts(2, 1, 3)
    assert receipt_counts(9, "bob", GROUP, GROUP_MARKS) == ReceiptCounts(1, 1, 3)


def test_group_status_needs_every_other_member() -> None:
    assert status_of(3, "alice", GROUP, GROUP_MARKS) == "read"
    assert status_of(4, "alice", GROUP, GROUP_MARKS) == "delivered"
    assert status_of(6, "alice", GROUP, GROUP_MARKS) == "sent"
    assert status_of(5, "dave", GROUP, GROUP_MARKS) == "delivered"


def test_members_listed_twice_count_once_and_non_members_not_at_all() -> None:
    watermarks = {**GROUP_MARKS, "eve": wm("eve", 100, 100)}

    counts = receipt_counts(1, "alice", [*GROUP, "bob"], watermarks)

    assert counts == ReceiptCounts(3, 3, 3)


def test_sender_who_left_is_not_counted() -> None:
    assert receipt_counts(1, "zoe", GROUP, GROUP_MARKS).total == 4


def test_statuses_in_one_pass() -> None:
    assert statuses([1, 3, 4, 5, 6, 10], "alice", GROUP, GROUP_MARKS) == [
        "read",
        "read",
        "delivered",
        "delivered",
        "sent",
        "sent",
    ]
    assert statuses([], "alice", GROUP, GROUP_MARKS) == []


def test_counts_for_many_seqs() -> None:
    assert receipt_counts_many([1, 4, 6, 6, 8, 20], "alice", GROUP, GROUP_MARKS) == [
        ReceiptCounts(3, 3, 3),
        ReceiptCounts(3, 2, 3),
        ReceiptCounts(2, 1, 3),
        ReceiptCounts(2, 1, 3),
        ReceiptCounts(1, 0, 3),
        ReceiptCounts(0, 0, 3),
    ]


def test_counts_for_many_refuses_unsorted_seqs() -> None:
    with pytest.raises(ValueError, match="ascending"):
        receipt_counts_many([3, 2], "alice", GROUP, GROUP_MARKS)


@pytest.mark.parametrize("seq", [0, -1])
def test_seqs_below_one_are_refused(seq: int) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        status_of(seq, "alice", GROUP, GROUP_MARKS)
    with pytest.raises(ValueError, match=">= 1"):
        receipt_counts(seq, "alice", GROUP, GROUP_MARKS)
    with pytest.raises(ValueError, match=">= 1"):
        statuses([1, seq], "alice", GROUP, GROUP_MARKS)
    with pytest.raises(ValueError, match=">= 1"):
        receipt_counts_many([seq], "alice", GROUP, GROUP_MARKS)


# --- unread --------------------------------------------------------------------


def test_unread_is_last_seq_minus_read() -> None:
    assert unread_count(12, wm("bob", 14, 9)) == 3
    assert unread_count(12, None) == 12
    assert unread_count(0, None) == 0
    assert unread_count(5, wm("bob", 9, 9)) == 0


# --- properties against a brute-force model -------------------------------------

RANK: dict[MessageStatus, int] = {"sent": 0, "delivered": 1, "read": 2}


def member_status(seq: int, marks: Watermarks | None) -> MessageStatus:
    """One member's view of one message, straight from the definition."""
    if marks is None:
        return "sent"
    if marks.read_seq >= seq:
        return "read"
    if marks.delivered_seq >= seq:
        return "delivered"
    return "sent"


def model_counts(
    seq: int, sender: str, members: list[str], watermarks: Mapping[str, Watermarks]
) -> ReceiptCounts:
    others = sorted(set(members) - {sender})
    per_member = [member_status(seq, watermarks.get(user)) for user in others]
    return ReceiptCounts(
        delivered=sum(s != "sent" for s in per_member),
        read=sum(s == "read" for s in per_member),
        total=len(others),
    )


def model_status(
    seq: int, sender: str, members: list[str], watermarks: Mapping[str, Watermarks]
) -> MessageStatus:
    others = sorted(set(members) - {sender})
    if not others:
        return "sent"
    return min((member_status(seq, watermarks.get(user)) for user in others), key=RANK.__getitem__)


USERS = [f"u{i}" for i in range(7)]
raw_marks = st.dictionaries(
    st.sampled_from(USERS),
    st.tuples(st.integers(0, 30), st.integers(0, 30)),  # any pair: also delivered < read
)


def to_marks(raw: dict[str, tuple[int, int]]) -> dict[str, Watermarks]:
    return {user: wm(user, d, r) for user, (d, r) in raw.items()}


chat = st.tuples(
    st.lists(st.sampled_from(USERS), max_size=9),
    st.sampled_from(USERS),
    raw_marks,
)


@given(chat, st.lists(st.integers(1, 35), max_size=25))
def test_aggregates_match_brute_force(
    data: tuple[list[str], str, dict[str, tuple[int, int]]], seqs: list[int]
) -> None:
    members, sender, raw = data
    watermarks = to_marks(raw)
    seqs = sorted(seqs)

    expected_status = [model_status(s, sender, members, watermarks) for s in seqs]
    expected_counts = [model_counts(s, sender, members, watermarks) for s in seqs]

    assert [status_of(s, sender, members, watermarks) for s in seqs] == expected_status
    assert statuses(seqs, sender, members, watermarks) == expected_status
    assert statuses(seqs[::-1], sender, members, watermarks) == expected_status[::-1]
    assert [receipt_counts(s, sender, members, watermarks) for s in seqs] == expected_counts
    assert receipt_counts_many(seqs, sender, members, watermarks) == expected_counts


@given(chat, st.integers(1, 35))
def test_read_implies_delivered_and_status_agrees_with_counts(
    data: tuple[list[str], str, dict[str, tuple[int, int]]], seq: int
) -> None:
    members, sender, raw = data
    watermarks = to_marks(raw)

    counts = receipt_counts(seq, sender, members, watermarks)
    status = status_of(seq, sender, members, watermarks)

    assert 0 <= counts.read <= counts.delivered <= counts.total
    if counts.total == 0:
        assert status == "sent"
    else:
        assert (status == "read") == (counts.read == counts.total)
        assert (status != "sent") == (counts.delivered == counts.total)
    # a later message is never further along than an earlier one
    later = status_of(seq + 1, sender, members, watermarks)
    assert RANK[later] <= RANK[status]


@given(st.integers(0, 100), st.none() | st.tuples(st.integers(0, 200), st.integers(0, 200)))
def test_unread_never_negative(last_seq: int, raw: tuple[int, int] | None) -> None:
    marks = None if raw is None else wm("bob", *raw)

    unread = unread_count(last_seq, marks)

    assert unread >= 0
    read = 0 if marks is None else marks.read_seq
    assert unread == (last_seq - read if read <= last_seq else 0)


def test_public_names_are_exported() -> None:
    import chatcore.receipts

    assert sorted(chatcore.receipts.__all__) == sorted(set(chatcore.receipts.__all__))
    for name in chatcore.receipts.__all__:
        assert getattr(chatcore.receipts, name) is not None
