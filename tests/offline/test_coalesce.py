from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.errors import InvalidRequest
from chatcore.offline import DEFAULT_WINDOW_MS, PushCoalescer, PushNotification

T0 = 1_750_000_000_000


def test_default_window_is_two_seconds() -> None:
    assert DEFAULT_WINDOW_MS == 2000


def test_negative_window_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        PushCoalescer(window_ms=-1)


def test_nothing_fed_nothing_due() -> None:
    coalescer = PushCoalescer()
    assert coalescer.flush(now_ms=T0) == []
    assert coalescer.next_due_ms() is None


def test_first_message_is_due_at_once() -> None:
    coalescer = PushCoalescer()
    coalescer.feed("bob", "c1", "alice", 5, "hi", now_ms=T0)

    assert coalescer.next_due_ms() == T0
    assert coalescer.flush(now_ms=T0) == [
        PushNotification("bob", "c1", count=1, senders=("alice",), last_seq=5, preview="hi")
    ]
    assert coalescer.flush(now_ms=T0) == []
    assert coalescer.next_due_ms() is None


def test_a_burst_within_the_window_becomes_one_push() -> None:
    coalescer = PushCoalescer(window_ms=2000)
    coalescer.feed("bob", "c1", "alice", 1, "first", now_ms=T0)
    assert [n.count for n in coalescer.flush(now_ms=T0)] == [1]

    for seq in range(2, 14):
        coalescer.feed("bob", "c1", "alice", seq, f"m{seq}", now_ms=T0 + 10 * seq)
    assert coalescer.next_due_ms() == T0 + 2000
    assert coalescer.flush(now_ms=T0 + 1999) == []

    assert coalescer.flush(now_ms=T0 + 2000) == [
        PushNotification("bob", "c1", count=12, senders=("alice",), last_seq=13, preview="m13")
    ]


def test_pushes_are_at_least_a_window_apart() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    sent_at: list[int] = []
    for t in range(0, 5000, 100):
        coalescer.feed("bob", "c1", "alice", t // 100 + 1, None, now_ms=T0 + t)
        if coalescer.flush(now_ms=T0 + t):
            sent_at.append(t)
    assert sent_at == [0, 1000, 2000, 3000, 4000]


def test_a_late_flush_restarts_the_window_from_the_push() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("bob", "c1", "alice", 1, None, now_ms=T0)
    coalescer.flush(now_ms=T0 + 500)
    coalescer.feed("bob", "c1", "alice", 2, None, now_ms=T0 + 600)
    assert coalescer.next_due_ms() == T0 + 1500


def test_a_quiet_spell_makes_the_next_message_due_at_once() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("bob", "c1", "alice", 1, None, now_ms=T0)
    coalescer.flush(now_ms=T0)
    coalescer.feed("bob", "c1", "alice", 2, None, now_ms=T0 + 5000)
    assert coalescer.next_due_ms() == T0 + 5000


def test_distinct_senders_in_first_appearance_order() -> None:
    coalescer = PushCoalescer()
    for seq, sender in enumerate(["alice", "carol", "alice", "dave", "carol"], start=1):
        coalescer.feed("bob", "g1", sender, seq, f"from {sender}", now_ms=T0 + 1)
    coalescer.feed("bob", "g1", "alice", 6, None, now_ms=T0 + 2)
    [push] = coalescer.flush(now_ms=T0 + 2)
    assert push == PushNotification(
        "bob", "g1", count=6, senders=("alice", "carol", "dave"), last_seq=6, preview=None
    )


def test_senders_restart_with_each_push() -> None:
    coalescer = PushCoalescer(window_ms=0)
    coalescer.feed("bob", "g1", "alice", 1, None, now_ms=T0)
    coalescer.flush(now_ms=T0)
    coalescer.feed("bob", "g1", "carol", 2, None, now_ms=T0 + 1)
    [push] = coalescer.flush(now_ms=T0 + 1)
    assert (push.senders, push.count) == (("carol",), 1)


def test_each_user_and_chat_is_coalesced_apart() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("bob", "c1", "alice", 1, None, now_ms=T0)
    coalescer.feed("bob", "c2", "alice", 1, None, now_ms=T0 + 10)
    coalescer.feed("carol", "c1", "alice", 1, None, now_ms=T0 + 20)

    pushes = coalescer.flush(now_ms=T0 + 20)

    assert [(n.user, n.chat_id) for n in pushes] == [("bob", "c1"), ("bob", "c2"), ("carol", "c1")]


def test_flush_orders_by_due_time() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("zed", "c9", "alice", 1, None, now_ms=T0)
    coalescer.feed("amy", "c1", "alice", 1, None, now_ms=T0 + 50)
    assert [n.user for n in coalescer.flush(now_ms=T0 + 60)] == ["zed", "amy"]


def test_a_redelivered_seq_is_not_counted_again() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    for seq in (1, 2, 2, 1, 3):
        coalescer.feed("bob", "c1", "alice", seq, None, now_ms=T0)
    [push] = coalescer.flush(now_ms=T0)
    assert (push.count, push.last_seq) == (3, 3)

    coalescer.feed("bob", "c1", "alice", 3, None, now_ms=T0 + 10)
    assert coalescer.next_due_ms() is None
    assert coalescer.flush(now_ms=T0 + 5000) == []


def test_cancel_drops_what_is_pending() -> None:
    coalescer = PushCoalescer()
    for chat in ("c1", "c2", "c3"):
        coalescer.feed("bob", chat, "alice", 1, None, now_ms=T0)
    coalescer.feed("carol", "c1", "alice", 1, None, now_ms=T0)

    coalescer.cancel("bob", ["c1", "c3", "unknown"])
    coalescer.cancel("nobody")
    coalescer.cancel("nobody", ["c1"])
    assert [(n.user, n.chat_id) for n in coalescer.flush(now_ms=T0)] == [
        ("bob", "c2"),
        ("carol", "c1"),
    ]

    coalescer.feed("bob", "c2", "alice", 2, None, now_ms=T0 + 1)
    coalescer.cancel("bob")
    assert coalescer.flush(now_ms=T0 + 10_000) == []


def test_cancel_resets_the_window() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("bob", "c1", "alice", 1, None, now_ms=T0)
    coalescer.flush(now_ms=T0)
    coalescer.cancel("bob")
    coalescer.feed("bob", "c1", "alice", 2, None, now_ms=T0 + 100)
    assert coalescer.next_due_ms() == T0 + 100


_events = st.lists(
    st.tuples(
        st.sampled_from(["u1", "u2"]),
        st.sampled_from(["c1", "c2"]),
        st.sampled_from(["alice", "bob", "carol"]),
        st.integers(0, 700),
        st.booleans(),
    ),
    max_size=60,
)


@given(_events, st.sampled_from([0, 500, 2000]))
def test_every_message_is_pushed_once_and_never_faster_than_the_window(
    events: list[tuple[str, str, str, int, bool]], window_ms: int
) -> None:
    coalescer = PushCoalescer(window_ms=window_ms)
    now = T0
    seqs: dict[tuple[str, str], int] = {}
    fed: dict[tuple[str, str], int] = {}
    pushed: dict[tuple[str, str], list[tuple[int, PushNotification]]] = {}
    for user, chat, sender, step, flush in events:
        now += step
        key = (user, chat)
        seqs[key] = seqs.get(key, 0) + 1
        fed[key] = fed.get(key, 0) + 1
        coalescer.feed(user, chat, sender, seqs[key], None, now_ms=now)
        if flush:
            for n in coalescer.flush(now_ms=now):
                pushed.setdefault((n.user, n.chat_id), []).append((now, n))
    while (due := coalescer.next_due_ms()) is not None:
        now = max(now, due)
        for n in coalescer.flush(now_ms=now):
            pushed.setdefault((n.user, n.chat_id), []).append((now, n))

    for key, count in fed.items():
        pushes = pushed[key]
        assert sum(n.count for _, n in pushes) == count
        assert pushes[-1][1].last_seq == seqs[key]
        times = [t for t, _ in pushes]
        assert all(b - a >= window_ms for a, b in itertools.pairwise(times))


def test_an_encrypted_message_never_leaks_a_preview() -> None:
    coalescer = PushCoalescer(window_ms=1000)
    coalescer.feed("bob", "c1", "alice", 1, "secret", now_ms=T0, encrypted=True)
    assert coalescer.flush(now_ms=T0) == [
        PushNotification("bob", "c1", 1, ("alice",), 1, preview=None, encrypted=True)
    ]

    # A batch holding one encrypted message shows no preview, even of a plain one after it.
    coalescer.feed("bob", "c1", "alice", 2, "secret too", now_ms=T0 + 10, encrypted=True)
    coalescer.feed("bob", "c1", "alice", 3, "plain", now_ms=T0 + 20)
    [batch] = coalescer.flush(now_ms=T0 + 1000)
    assert (batch.count, batch.preview, batch.encrypted) == (2, None, True)

    # The next batch of plain messages shows its preview again.
    coalescer.feed("bob", "c1", "alice", 4, "hello", now_ms=T0 + 3000)
    [plain] = coalescer.flush(now_ms=T0 + 3000)
    assert (plain.preview, plain.encrypted) == ("hello", False)
