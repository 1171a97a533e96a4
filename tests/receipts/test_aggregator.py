"""The unread count derived from a member's watermarks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatcore.model import Watermarks
from chatcore.receipts import unread_count


def wm(user: str, delivered: int = 0, read: int = 0) -> Watermarks:
    return Watermarks(chat_id="c1", user=user, delivered_seq=delivered, read_seq=read)


def test_unread_is_last_seq_minus_read() -> None:
    assert unread_count(12, wm("bob", 14, 9)) == 3
    assert unread_count(12, None) == 12
    assert unread_count(0, None) == 0
    assert unread_count(5, wm("bob", 9, 9)) == 0


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
