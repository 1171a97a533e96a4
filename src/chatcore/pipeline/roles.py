"""The rules of group roles: who may change a group, and what the group looks like after.

Pure functions, no I/O: :class:`~chatcore.pipeline.chats.ChatDirectory` reads the
chat, asks :func:`plan_change` what the change makes of it (or which rule it
breaks), and stores the answer.

* Roles: the creator, admins, members. The creator is an admin and no one else can
  remove or demote them. Only admins add members, remove other members, promote,
  demote or change the group's options. Anyone may leave (remove themselves).
* The last admin leaving (or being removed) promotes the longest-standing remaining
  member (the first in the member list), so a non-empty group always has an admin.
* ``history_visible`` off: a member added from then on sees only the messages
  after the chat's last seq at the time they joined (:func:`visible_after`).
* A group stored before roles existed has no admins on record: its first member
  counts as its admin (and creator).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import msgspec

from chatcore.errors import InvalidRequest, NotMember
from chatcore.model import ChatInfo, ChatRoles
from chatcore.store._rules import changed_members, unique

__all__ = ["MemberChange", "plan_change"]


class MemberChange(NamedTuple):
    """What a change of a group asks for (all empty: nothing)."""

    add: Sequence[str] = ()
    remove: Sequence[str] = ()
    promote: Sequence[str] = ()
    demote: Sequence[str] = ()
    history_visible: bool | None = None


def plan_change(chat: ChatInfo, user: str, change: MemberChange, *, last_seq: int) -> ChatInfo:
    """The chat after ``user`` makes ``change``; raises NotMember or InvalidRequest
    (naming the rule) when the change is not allowed. ``last_seq``: the chat's last
    seq now (where a member added with hidden history starts)."""
    if not chat.has_member(user):
        raise NotMember(f"{user!r} is not a member of chat {chat.chat_id!r}")
    if chat.kind != "group":
        raise InvalidRequest("the members of a direct chat cannot change")
    if any(not m for m in (*change.add, *change.promote, *change.demote)):
        raise InvalidRequest("member ids must not be empty")
    admin = chat.is_admin(user)
    creator = chat.creator()
    others_removed = [m for m in change.remove if m != user]
    asks_admin = (
        change.add or others_removed or change.promote or change.demote
    ) or change.history_visible is not None
    if asks_admin and not admin:
        raise InvalidRequest(
            f"only an admin of chat {chat.chat_id!r} may add or remove others, "
            "promote, demote or change its options"
        )
    if creator and creator != user and creator in (*others_removed, *change.demote):
        raise InvalidRequest("the creator of a group cannot be removed or demoted by others")
    members = changed_members(chat.members, add=change.add, remove=change.remove)
    present = set(members)
    for m in change.promote:
        if m not in present:
            raise InvalidRequest(f"{m!r} is not a member of chat {chat.chat_id!r}")
    demoted = set(change.demote)
    admins = [a for a in unique([*chat.admins(), *change.promote]) if a not in demoted]
    admins = [a for a in admins if a in present]
    if not admins and members:
        admins = [members[0]]  # the last admin left: the longest-standing member takes over
    history_visible = (
        chat.roles.history_visible if change.history_visible is None else change.history_visible
    )
    added = [m for m in members if not chat.has_member(m)]
    joined = {m: seq for m, seq in chat.roles.joined if m in present and m not in added}
    if not history_visible:
        joined.update((m, last_seq) for m in added)
    roles = ChatRoles(
        creator=creator,
        admins=tuple(admins),
        history_visible=history_visible,
        joined=tuple(joined.items()),
    )
    return msgspec.structs.replace(chat, members=members, roles=roles)
