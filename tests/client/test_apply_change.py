"""The SDK's apply_change: live events on held messages, skipping those already in them."""

from __future__ import annotations

import msgspec

from chatcore.client import apply_change
from chatcore.protocol import Message


def msg(
    seq: int, kind: str = "text", body: str = "hi", sender: str = "alice", **kw: object
) -> Message:
    return msgspec.convert(
        {"chat": "c", "seq": seq, "message_id": str(seq), "sender": sender,
         "client_msg_id": f"c{seq}", "kind": kind, "body": body, "ts": 1000 + seq, **kw},
        Message,
    )  # fmt: skip


def test_events_change_the_target_in_order() -> None:
    m = msg(1)
    m = apply_change(m, msg(2, "edit", "hello", target=1))
    m = apply_change(m, msg(3, "react", "👍", "bob", target=1))
    m = apply_change(m, msg(4, "react", "👍", "carol", target=1))
    m = apply_change(m, msg(5, "unreact", "👍", "bob", target=1))
    assert (m.body, m.edited_ts, m.changed_seq) == ("hello", 1002, 5)
    assert [(r.emoji, r.users) for r in m.reactions] == [("👍", ["carol"])]
    assert apply_change(m, msg(3, "react", "👍", "bob", target=1)) == m  # already in it
    assert apply_change(m, msg(6, "edit", "forged", "bob", target=1)).body == "hello"
    assert apply_change(m, msg(7, "react", "🎉", target=2)) == m  # another message's
    gone = apply_change(m, msg(8, "delete", "", target=1))
    assert (gone.deleted, gone.body, gone.reactions) == (True, "", [])
    assert apply_change(gone, msg(9, "edit", "back", target=1)) == gone
