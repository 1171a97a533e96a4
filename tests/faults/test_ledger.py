"""The fault suite's accounting: what senders were told against what the store holds."""

from __future__ import annotations

import pytest

from benchmarks.faults.ledger import Ledger, Row, tally


def ledger_of(*sends: tuple[str, int | None]) -> Ledger:
    """Sends of user ``u`` in chat ``c``, in order; ``None``: never acked."""
    ledger = Ledger()
    for cmid, message_id in sends:
        ledger.sent("c", "u", cmid)
        if message_id is None:
            ledger.failed("c", "u", cmid, "Unavailable")
        else:
            ledger.acked("c", "u", cmid, message_id)
    return ledger


def rows(*stored: tuple[str, int]) -> list[Row]:
    return [Row("c", seq, "u", cmid, mid) for seq, (cmid, mid) in enumerate(stored, 1)]


def test_a_clean_run_counts_nothing_wrong() -> None:
    t = tally(ledger_of(("a", 1), ("b", 2), ("x", None)), rows(("a", 1), ("b", 2)))
    assert t.ok
    assert (t.sent, t.acked, t.unacked, t.stored) == (3, 2, 1, 2)
    assert (t.acked_lost, t.duplicated, t.reordered, t.unacked_stored) == (0, 0, 0, 0)


def test_lost_duplicated_reordered_and_wrong_ids_are_counted() -> None:
    ledger = ledger_of(("a", 1), ("b", 2), ("c", 3), ("d", 4))
    stored = rows(("b", 2), ("a", 1), ("b", 2), ("c", 9))
    t = tally(ledger, stored)
    assert not t.ok
    assert t.acked_lost == 1  # d
    assert t.duplicated == 1  # b twice
    assert t.reordered == 1  # a stored after b
    assert t.wrong_id == 1  # c acked as 3, stored as 9


def test_an_unacked_send_may_be_stored_once_but_not_twice() -> None:
    ledger = ledger_of(("a", None), ("b", None))
    t = tally(ledger, rows(("a", 5), ("b", 6), ("b", 6)))
    assert (t.unacked_stored, t.unacked_twice) == (1, 1)
    assert not t.ok


def test_rows_nobody_sent_are_unknown() -> None:
    t = tally(ledger_of(("a", 1)), rows(("a", 1), ("zz", 2)))
    assert t.unknown == 1 and not t.ok


def test_reordering_is_per_sender_and_chat() -> None:
    ledger = Ledger()
    for user in ("u", "v"):
        for i in range(2):
            ledger.sent("c", user, f"{user}{i}")
            ledger.acked("c", user, f"{user}{i}", hash((user, i)))
    # Interleaved senders, each in its own order: nothing reordered.
    stored = [
        Row("c", 1, "v", "v0", hash(("v", 0))),
        Row("c", 2, "u", "u0", hash(("u", 0))),
        Row("c", 3, "v", "v1", hash(("v", 1))),
        Row("c", 4, "u", "u1", hash(("u", 1))),
    ]
    assert tally(ledger, stored).ok


def test_bad_bookkeeping_is_refused() -> None:
    ledger = ledger_of(("a", 1))
    with pytest.raises(ValueError, match="sent twice"):
        ledger.sent("c", "u", "a")
    with pytest.raises(ValueError, match="unknown send"):
        ledger.acked("c", "u", "nope", 1)
    with pytest.raises(ValueError, match="acked as 1 and then as 2"):
        ledger.acked("c", "u", "a", 2)
    ledger.failed("c", "u", "a", "late error")  # an ack is not taken back
    assert ledger.message_id("c", "u", "a") == 1
    assert ledger.errors() == {}
