"""Who may see whose presence: chats and watermarks in, a verdict out (no I/O).

A user may see ``watched``'s presence when they share a chat in which ``watched`` has
taken part: ``watched`` created it (the first of its members: a chat's members keep
their order, creator first) or has a read watermark above 0 in it (sending raises the
sender's own read watermark, so this counts sending too; reading already shows the
others a read receipt). Being put in a chat by someone else is not enough, or anyone
could see a stranger's presence by creating a group that contains them.

* no shared chat: :attr:`Visibility.STRANGER` (the request is refused);
* shared chats, none taken part in: :attr:`Visibility.HIDDEN` (shown as offline,
  never seen, and changes are not pushed);
* otherwise :attr:`Visibility.VISIBLE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum

from chatcore.model import ChatInfo, PresenceState, Watermarks

__all__ = ["Visibility", "hidden_state", "took_part", "visibility"]


class Visibility(Enum):
    """How much of a user's presence another user may see."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    STRANGER = "stranger"


def took_part(user: str, chat: ChatInfo, marks: Watermarks | None) -> bool:
    """Whether ``user`` created ``chat`` or has sent or read in it (``marks``: theirs)."""
    created = bool(chat.members) and chat.members[0] == user
    return created or (marks is not None and marks.read_seq > 0)


def visibility(
    watched: str, shared: Sequence[ChatInfo], marks: Mapping[str, Watermarks]
) -> Visibility:
    """The verdict for ``watched``, given the chats shared with the viewer and
    ``watched``'s watermarks by chat id (missing: none)."""
    if not shared:
        return Visibility.STRANGER
    if any(took_part(watched, chat, marks.get(chat.chat_id)) for chat in shared):
        return Visibility.VISIBLE
    return Visibility.HIDDEN


def hidden_state(user: str) -> PresenceState:
    """What a viewer is shown of a user they may not see: offline, never seen."""
    return PresenceState(user, False, None)
