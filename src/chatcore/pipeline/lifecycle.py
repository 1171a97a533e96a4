"""The rules of a message's lifecycle: edit, delete (a tombstone), reactions.

Pure functions, no I/O. A change is an event sequenced in the chat like a message
(so seq stays contiguous and orders it with the messages); :func:`check_change`
says whether ``user`` may make it (the Router asks before appending), and
:func:`applied` gives the target's state after it (the HistoryWorker stores that,
the reader folds events into a page with :func:`fold`).

* Only the author edits; only the author deletes, or in a group an admin.
* An edit is allowed for ``edit_window_ms`` after the message was sent (None: always).
* A deleted message is a tombstone: empty body, no attachment, no reactions; it
  cannot be edited, reacted to or deleted again.
* A reaction is one emoji of at most ``max_reaction_bytes`` UTF-8 bytes, no spaces or
  control characters; a message holds at most ``max_reactions`` distinct emoji. A
  user reacting with an emoji they already used, or taking back one they did not
  use, changes nothing.
* Applying an event is idempotent: an event at or below the target's
  ``changed_seq`` is already in it and is skipped (a replayed batch changes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from chatcore.errors import FrameTooLarge, InvalidRequest, MessageNotFound
from chatcore.model import ChatInfo, EventKind, StoredMessage

__all__ = ["DEFAULT_LIMITS", "LifecycleLimits", "applied", "check_change", "fold"]


class LifecycleLimits(NamedTuple):
    """Limits on changes; every one has a safe default."""

    edit_window_ms: int | None = None
    """How long after sending the author may edit (None: no limit)."""
    max_body_bytes: int = 16 * 1024
    max_reaction_bytes: int = 64
    max_reactions: int = 64
    """Distinct emoji on one message."""


DEFAULT_LIMITS = LifecycleLimits()


def check_change(
    chat: ChatInfo,
    user: str,
    target: StoredMessage | None,
    kind: EventKind,
    body: str,
    *,
    now_ms: int,
    limits: LifecycleLimits = DEFAULT_LIMITS,
) -> None:
    """Raise MessageNotFound (no such message), InvalidRequest or FrameTooLarge when ``user``
    may not make this change to ``target``."""
    if target is None or target.is_event:
        raise MessageNotFound(f"no message to {kind} in chat {chat.chat_id!r} at that seq")
    if target.deleted:
        raise InvalidRequest(f"message {target.seq} was deleted")
    if kind == "edit":
        if target.sender != user:
            raise InvalidRequest("only the author of a message edits it")
        if limits.edit_window_ms is not None and now_ms - target.ts > limits.edit_window_ms:
            raise InvalidRequest(f"a message can be edited for {limits.edit_window_ms} ms only")
        if len(body.encode()) > limits.max_body_bytes:
            raise FrameTooLarge(f"message body over {limits.max_body_bytes} bytes")
        if not body and target.attachment is None:
            raise InvalidRequest("an edit of a text message needs a body")
    elif kind == "delete":
        if target.sender != user and not (chat.kind == "group" and chat.is_admin(user)):
            raise InvalidRequest("only the author of a message, or a group's admin, deletes it")
    else:
        _check_emoji(body, limits)
        used = {emoji for emoji, _ in target.reactions}
        if kind == "react" and body not in used and len(used) >= limits.max_reactions:
            raise InvalidRequest(f"a message holds at most {limits.max_reactions} reactions")


def _check_emoji(emoji: str, limits: LifecycleLimits) -> None:
    if not emoji:
        raise InvalidRequest("a reaction needs an emoji")
    if len(emoji.encode()) > limits.max_reaction_bytes:
        raise InvalidRequest(f"a reaction is at most {limits.max_reaction_bytes} bytes")
    if any(c.isspace() or not c.isprintable() for c in emoji):
        raise InvalidRequest("a reaction has no spaces or control characters")


def applied(target: StoredMessage, event: StoredMessage) -> StoredMessage:
    """``target`` after ``event`` (itself if the event is already in it or not for it)."""
    if event.target != target.seq or event.seq <= target.changed_seq or target.is_event:
        return target
    replace = msgspec.structs.replace
    if target.deleted:
        return replace(target, changed_seq=event.seq)
    match event.kind:
        case "edit":
            if event.sender != target.sender:
                return replace(target, changed_seq=event.seq)
            return replace(
                target,
                body=event.body,
                encrypted=event.encrypted,
                edited_ts=event.ts,
                changed_seq=event.seq,
            )
        case "delete":
            return replace(
                target,
                body="",
                attachment=None,
                reactions=(),
                deleted=True,
                changed_seq=event.seq,
            )
        case "react" | "unreact":
            return replace(
                target,
                reactions=_reacted(target.reactions, event.body, event.sender, event.kind),
                changed_seq=event.seq,
            )
        case _:
            return target


def _reacted(
    reactions: tuple[tuple[str, tuple[str, ...]], ...], emoji: str, user: str, kind: str
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    by_emoji = dict(reactions)
    users = by_emoji.get(emoji, ())
    if kind == "react" and user not in users:
        by_emoji[emoji] = (*users, user)
    elif kind == "unreact" and user in users:
        rest = tuple(u for u in users if u != user)
        if rest:
            by_emoji[emoji] = rest
        else:
            del by_emoji[emoji]
    return tuple(by_emoji.items())


def fold(messages: Iterable[StoredMessage]) -> list[StoredMessage]:
    """Messages (ascending by seq) with the events among them applied to the targets
    among them; the events stay in the list."""
    out = list(messages)
    index = {m.seq: i for i, m in enumerate(out)}
    for m in list(out):
        if m.is_event and (i := index.get(m.target)) is not None:
            out[i] = applied(out[i], m)
    return out
