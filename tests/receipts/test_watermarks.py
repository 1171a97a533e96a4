from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.model import Watermarks
from chatcore.receipts import advance, merge

ZERO = Watermarks(chat_id="c1", user="bob")


def test_delivered_rises() -> None:
    after = advance(ZERO, delivered_seq=5, now_ms=100)

    assert after == Watermarks("c1", "bob", delivered_seq=5, read_seq=0, updated_ms=100)


def test_read_implies_delivered() -> None:
    after = advance(ZERO, read_seq=7, now_ms=100)

    assert after == Watermarks("c1", "bob", delivered_seq=7, read_seq=7, updated_ms=100)


def test_read_below_delivered_keeps_delivered() -> None:
    current = Watermarks("c1", "bob", delivered_seq=9, read_seq=2, updated_ms=1)

    after = advance(current, read_seq=5, now_ms=100)

    assert after == Watermarks("c1", "bob", delivered_seq=9, read_seq=5, updated_ms=100)


def test_lower_or_equal_receipts_change_nothing() -> None:
    current = Watermarks("c1", "bob", delivered_seq=9, read_seq=4, updated_ms=1)

    assert advance(current, delivered_seq=9, now_ms=100) is None
    assert advance(current, delivered_seq=3, read_seq=4, now_ms=100) is None
    assert advance(current, now_ms=100) is None


def test_only_the_raised_watermark_moves() -> None:
    current = Watermarks("c1", "bob", delivered_seq=9, read_seq=4, updated_ms=1)

    after = advance(current, delivered_seq=2, read_seq=6, now_ms=50)

    assert after == Watermarks("c1", "bob", delivered_seq=9, read_seq=6, updated_ms=50)


def test_same_receipt_twice_is_idempotent() -> None:
    once = advance(ZERO, delivered_seq=3, read_seq=2, now_ms=10)
    assert once is not None

    assert advance(once, delivered_seq=3, read_seq=2, now_ms=20) is None


def test_stored_inconsistency_is_repaired_by_any_change() -> None:
    broken = Watermarks("c1", "bob", delivered_seq=1, read_seq=5)

    after = advance(broken, delivered_seq=2, now_ms=9)

    assert after == Watermarks("c1", "bob", delivered_seq=5, read_seq=5, updated_ms=9)


def test_last_seq_caps_the_receipt_but_never_lowers() -> None:
    assert advance(ZERO, read_seq=100, now_ms=1, last_seq=12) == Watermarks(
        "c1", "bob", delivered_seq=12, read_seq=12, updated_ms=1
    )
    ahead = Watermarks("c1", "bob", delivered_seq=20, read_seq=15)
    assert advance(ahead, delivered_seq=30, read_seq=30, now_ms=1, last_seq=12) is None
    assert advance(ZERO, read_seq=5, now_ms=1, last_seq=0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"delivered_seq": -1}, {"read_seq": -1}, {"delivered_seq": 1, "last_seq": -1}],
)
def test_negative_seqs_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        advance(ZERO, now_ms=1, **kwargs)


# --- properties ----------------------------------------------------------------

seqs = st.integers(0, 50)
receipts = st.lists(st.tuples(seqs, seqs), max_size=20)


def apply_all(start: Watermarks, steps: list[tuple[int, int]]) -> Watermarks:
    current = start
    for now_ms, (delivered, read) in enumerate(steps, start=1):
        after = advance(current, delivered_seq=delivered, read_seq=read, now_ms=now_ms)
        if after is not None:
            current = after
    return current


@given(receipts)
def test_result_is_the_highest_seen_and_read_implies_delivered(
    steps: list[tuple[int, int]],
) -> None:
    final = apply_all(ZERO, steps)

    read = max((r for _, r in steps), default=0)
    delivered = max([d for d, _ in steps] + [read], default=0)
    assert (final.delivered_seq, final.read_seq) == (delivered, read)
    assert (final.chat_id, final.user) == ("c1", "bob")


@given(receipts, st.randoms())
def test_order_of_receipts_does_not_matter(
    steps: list[tuple[int, int]], rnd: random.Random
) -> None:
    shuffled = rnd.sample(steps, len(steps))
    a, b = apply_all(ZERO, steps), apply_all(ZERO, shuffled)
    assert (a.delivered_seq, a.read_seq) == (b.delivered_seq, b.read_seq)


@given(
    st.builds(Watermarks, st.just("c1"), st.just("bob"), seqs, seqs, st.integers(0, 9)),
    seqs,
    seqs,
)
def test_never_lowers_and_none_means_unchanged(current: Watermarks, d: int, r: int) -> None:
    after = advance(current, delivered_seq=d, read_seq=r, now_ms=99)

    if after is None:
        assert current.read_seq >= r
        assert current.delivered_seq >= max(d, r, current.read_seq)
    else:
        assert after != current
        assert after.read_seq >= current.read_seq
        assert after.delivered_seq >= current.delivered_seq
        assert after.delivered_seq >= after.read_seq
        assert after.updated_ms == 99
        assert advance(after, delivered_seq=d, read_seq=r, now_ms=100) is None


# --- merge ---------------------------------------------------------------------

marks = st.builds(Watermarks, st.just("c1"), st.just("bob"), seqs, seqs, st.integers(0, 9))


@given(marks, marks, marks)
def test_merge_is_commutative_associative_idempotent(
    a: Watermarks, b: Watermarks, c: Watermarks
) -> None:
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    ab = merge(a, b)
    assert merge(ab, ab) == ab


@given(marks, marks)
def test_merge_takes_the_highest_of_each(a: Watermarks, b: Watermarks) -> None:
    m = merge(a, b)

    assert m.read_seq == max(a.read_seq, b.read_seq)
    assert m.delivered_seq == max(a.delivered_seq, b.delivered_seq, m.read_seq)
    assert m.updated_ms == max(a.updated_ms, b.updated_ms)


@given(receipts, receipts)
def test_merging_replicas_equals_seeing_every_receipt(
    left: list[tuple[int, int]], right: list[tuple[int, int]]
) -> None:
    merged = merge(apply_all(ZERO, left), apply_all(ZERO, right))
    together = apply_all(ZERO, left + right)
    assert (merged.delivered_seq, merged.read_seq) == (together.delivered_seq, together.read_seq)


def test_merge_refuses_another_member_or_chat() -> None:
    with pytest.raises(ValueError, match="cannot merge"):
        merge(ZERO, Watermarks("c1", "carol"))
    with pytest.raises(ValueError, match="cannot merge"):
        merge(ZERO, Watermarks("c2", "bob"))
