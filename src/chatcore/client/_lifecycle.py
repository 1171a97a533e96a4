"""Applying a received lifecycle event (edit, delete, reaction) to the message it targets.

Pure: an app that keeps its chats' messages calls :func:`apply_change` for each
``MessageReceived`` whose ``message.target`` is set, as the server does for history.
"""

from __future__ import annotations

import msgspec

from chatcore.protocol import Message, ReactionView

__all__ = ["apply_change"]


def apply_change(message: Message, event: Message) -> Message:
    """``message`` as ``event`` leaves it: itself if the event is not for it, is already
    in it (``changed_seq``: a message from history holds the events before it), the
    message is deleted, or the edit is not its author's."""
    if event.target != message.seq or event.chat != message.chat or message.deleted:
        return message
    if event.seq <= (message.changed_seq or 0):
        return message
    replace = msgspec.structs.replace
    message = replace(message, changed_seq=event.seq)
    if event.kind == "edit" and event.sender == message.sender:
        return replace(message, body=event.body, encrypted=event.encrypted, edited_ts=event.ts)
    if event.kind == "delete":
        return replace(message, body="", attachment=None, reactions=[], deleted=True)
    if event.kind in ("react", "unreact"):
        users = {r.emoji: list(r.users) for r in message.reactions}
        who = users.setdefault(event.body, [])
        if event.kind == "react" and event.sender not in who:
            who.append(event.sender)
        elif event.kind == "unreact" and event.sender in who:
            who.remove(event.sender)
        reactions = [ReactionView(emoji=e, users=u) for e, u in users.items() if u]
        return replace(message, reactions=reactions)
    return message
