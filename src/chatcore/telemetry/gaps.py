"""Gaps in a chat's sequence, seen by a stage that receives every seq in order.

The Sequencer gives each chat contiguous seqs; a consumer of ``chat.messages`` sees
them in order, possibly again after a restart (a replay, not a gap). A seq more than
one above the last one seen for that chat means records were lost between the
Sequencer and the consumer: the loss-rate signal operators alert on.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["GapDetector"]


class GapDetector:
    """The last seq seen per chat (the most recent ``max_chats`` chats); counts skips."""

    def __init__(self, max_chats: int = 100_000) -> None:
        if max_chats < 1:
            raise ValueError("max_chats must be at least 1")
        self._last: OrderedDict[str, int] = OrderedDict()
        self._max = max_chats

    def see(self, chat_id: str, seq: int) -> int:
        """Note ``seq`` of ``chat_id``; how many seqs were skipped before it (0: none).

        A chat seen for the first time (or forgotten) sets its baseline: no gap.
        Replays (a seq at or below the last) are not gaps and do not move it back.
        """
        last = self._last.get(chat_id)
        if last is not None:
            self._last.move_to_end(chat_id)
            if seq <= last:
                return 0
        self._last[chat_id] = seq
        if len(self._last) > self._max:
            self._last.popitem(last=False)
        return 0 if last is None else seq - last - 1
