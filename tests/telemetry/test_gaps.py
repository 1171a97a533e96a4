"""GapDetector: contiguous seqs are no gap, skipped ones are counted, replays are not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.telemetry import GapDetector


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=200))
def test_contiguous_seqs_have_no_gap(first: int, n: int) -> None:
    gaps = GapDetector()
    assert [gaps.see("c", seq) for seq in range(first, first + n)] == [0] * n


@given(st.lists(st.integers(min_value=1, max_value=1000), min_size=1, max_size=100))
def test_missing_counts_are_the_seqs_jumped_over(seqs: list[int]) -> None:
    """Each new highest seq counts the seqs between it and the previous highest."""
    gaps = GapDetector()
    total = sum(gaps.see("c", seq) for seq in seqs)
    highest, jumps = seqs[0], 0
    for seq in seqs[1:]:
        if seq > highest:
            highest, jumps = seq, jumps + 1
    assert total == highest - seqs[0] - jumps


def test_replays_and_new_chats_are_not_gaps() -> None:
    gaps = GapDetector()
    assert gaps.see("a", 7) == 0  # baseline
    assert gaps.see("a", 8) == 0
    assert gaps.see("a", 5) == 0  # a replay after a restart
    assert gaps.see("a", 9) == 0  # the replay did not move the baseline back
    assert gaps.see("a", 12) == 2
    assert gaps.see("b", 100) == 0


def test_chats_beyond_the_bound_are_forgotten_oldest_first() -> None:
    gaps = GapDetector(max_chats=2)
    gaps.see("a", 1)
    gaps.see("b", 1)
    gaps.see("a", 2)  # a is now the most recent
    gaps.see("c", 1)  # b goes
    assert gaps.see("a", 4) == 1
    assert gaps.see("b", 9) == 0  # forgotten: a new baseline


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GapDetector(max_chats=0)
