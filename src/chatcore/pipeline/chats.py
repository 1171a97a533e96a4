"""Creating chats and changing their members, with the rules a chat app expects; and
the short-lived cache of chats that the Router checks every send against."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

import anyio

from chatcore._clock import wall_ms
from chatcore.bus._base import GatewayBus
from chatcore.errors import InvalidRequest, NotFound, Unavailable
from chatcore.events import ChatEvent
from chatcore.fanout import FanoutPlanner, publish_to_members
from chatcore.ids import SnowflakeGenerator
from chatcore.model import ChatInfo, ChatKind, ChatRoles, direct_chat_id
from chatcore.pipeline.roles import MemberChange, plan_change
from chatcore.pipeline.workers import envelope_bytes
from chatcore.ratelimit import RateLimiter
from chatcore.registry._base import ConnectionRegistry
from chatcore.store._base import MembershipStore

__all__ = ["ChatCache", "ChatDirectory"]

_PLAN_ATTEMPTS = 32  # plans of one change while other role changes keep winning


class ChatCache:
    """Chats read from the MembershipStore, each trusted for ``ttl_s`` seconds.

    The Router asks it for the chat of every send and receipt, so a busy chat costs
    one store read per ``ttl_s`` instead of one per message. A change made through a
    :class:`ChatDirectory` that shares this cache is seen at once (the directory
    stores the new member list here), so within one process nothing is stale.
    A change made by another process is seen within ``ttl_s``: that is the bound on
    how long a removed member can still send or read through this process. An
    addition is never delayed: a user the cached chat does not list is checked
    against the store (:meth:`member_chat`). Chats that do not exist are not cached.

    ``ttl_s`` 0 turns caching off (every call reads the store). At most ``max_chats``
    chats are kept, least recently read dropped first. ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        membership: MembershipStore,
        *,
        ttl_s: float = 1.0,
        max_chats: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises InvalidRequest for a negative or infinite ``ttl_s`` or ``max_chats`` < 1."""
        if not math.isfinite(ttl_s) or ttl_s < 0:
            raise InvalidRequest(f"ttl_s must be a finite number >= 0, got {ttl_s}")
        if max_chats < 1:
            raise InvalidRequest(f"max_chats must be at least 1, got {max_chats}")
        self._membership = membership
        self.ttl_s = ttl_s
        self._max = max_chats
        self._clock = clock
        self._chats: OrderedDict[str, tuple[float, ChatInfo]] = OrderedDict()
        self._reading: dict[str, anyio.Event] = {}
        # Local changes so far: a read that overlapped one is not cached (it may be older).
        self._changes = 0

    async def get_chat(self, chat_id: str) -> ChatInfo | None:
        """The chat as read at most ``ttl_s`` ago (or now), or None if there is none."""
        if self.ttl_s <= 0:
            return await self._membership.get_chat(chat_id)
        hit = self._cached(chat_id)
        return hit if hit is not None else await self.refresh(chat_id)

    async def member_chat(self, user: str, chat_id: str) -> ChatInfo | None:
        """The chat, read from the store if the cached copy does not list ``user``
        (so a member added elsewhere is never refused); None if there is none."""
        if self.ttl_s <= 0:
            return await self._membership.get_chat(chat_id)
        hit = self._cached(chat_id)
        if hit is not None and hit.has_member(user):
            return hit
        return await self.refresh(chat_id, joined=hit is None)

    async def refresh(self, chat_id: str, *, joined: bool = True) -> ChatInfo | None:
        """Read the chat from the store now, and cache it.

        When ``joined``, concurrent refreshes of one chat share one read.
        """
        if joined:
            while (reading := self._reading.get(chat_id)) is not None:
                await reading.wait()  # another task reads it: use its result
                hit = self._cached(chat_id)
                if hit is not None:
                    return hit
            done = self._reading[chat_id] = anyio.Event()
        changes = self._changes
        try:
            chat = await self._membership.get_chat(chat_id)
            if chat is not None and self._changes == changes:  # else it may predate one
                self._store(chat)
            return chat
        finally:
            if joined:
                del self._reading[chat_id]
                done.set()

    def changed(self, chat: ChatInfo) -> None:
        """Note a chat as it is now, after a change this process made."""
        self._changes += 1
        self._store(chat)

    def forget(self, chat_id: str) -> None:
        """Drop a chat, so the next call reads it from the store."""
        self._changes += 1
        self._chats.pop(chat_id, None)

    def _cached(self, chat_id: str) -> ChatInfo | None:
        hit = self._chats.get(chat_id)
        if hit is None or self._clock() >= hit[0]:
            return None
        self._chats.move_to_end(chat_id)
        return hit[1]

    def _store(self, chat: ChatInfo) -> None:
        if self.ttl_s <= 0:
            return
        self._chats[chat.chat_id] = (self._clock() + self.ttl_s, chat)
        self._chats.move_to_end(chat.chat_id)
        while len(self._chats) > self._max:
            self._chats.popitem(last=False)


class ChatDirectory:
    """Creates direct and group chats and edits group membership.

    A direct chat between two users is one chat (its id follows from the pair), so
    asking for it again returns it. A group has at most ``max_members`` members,
    creator included. Members are told of changes with a ``chat`` event.
    """

    def __init__(
        self,
        membership: MembershipStore,
        ids: SnowflakeGenerator,
        registry: ConnectionRegistry,
        bus: GatewayBus,
        *,
        last_seq: Callable[[str], Awaitable[int]] | None = None,
        settled_last_seq: Callable[[str], Awaitable[int]] | None = None,
        planner: FanoutPlanner | None = None,
        cache: ChatCache | None = None,
        max_members: int = 256,
        max_title: int = 200,
        create_limit: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``settled_last_seq``: the chat's last seq counting every message accepted
        before the call (where a member added with history hidden starts; default
        ``last_seq``); ``cache``: the Router's :class:`ChatCache`, told of every change made here;
        ``create_limit``: a budget of new chats per creator (``clock``: its seconds);
        asking for a direct chat that exists costs nothing."""
        self._membership = membership
        self._cache = cache
        self._ids = ids
        self._registry = registry
        self._bus = bus
        self._planner = planner or FanoutPlanner()
        self._last_seq = last_seq
        self._settled_last_seq = settled_last_seq or last_seq
        self.max_members = max_members
        self.max_title = max_title
        self._create_limit = create_limit
        self._clock = clock

    async def create(
        self,
        creator: str,
        *,
        kind: ChatKind,
        members: Sequence[str],
        title: str | None = None,
        history_visible: bool = True,
    ) -> ChatInfo:
        """Create (or, for a direct chat, find) a chat; raises InvalidRequest, or
        RateLimited when ``creator`` makes new chats too fast (nothing is stored).

        A group's creator is its first admin; ``history_visible``: whether members
        added later see the messages sent before they joined."""
        others = [m for m in dict.fromkeys(members) if m != creator]
        if any(not m for m in others):
            raise InvalidRequest("member ids must not be empty")
        now = wall_ms()
        if kind == "direct":
            if len(others) != 1:
                raise InvalidRequest("a direct chat has exactly one other member")
            chat = ChatInfo(
                direct_chat_id(creator, others[0]), "direct", (creator, others[0]), None, now
            )
        else:
            if 1 + len(others) > self.max_members:
                raise InvalidRequest(f"a group has at most {self.max_members} members")
            if title is not None and len(title) > self.max_title:
                raise InvalidRequest(f"a title has at most {self.max_title} characters")
            roles = ChatRoles(creator, (creator,), history_visible)
            chat = ChatInfo(
                f"g-{self._ids.next_id()}", "group", (creator, *others), title, now, roles
            )
        if self._create_limit is not None and (
            kind == "group" or await self._membership.get_chat(chat.chat_id) is None
        ):
            self._create_limit.check(creator, self._clock())
        stored = await self._membership.create_chat(chat)
        if self._cache is not None:
            self._cache.changed(stored)
        if stored == chat:  # new: tell the members' devices
            await self._announce(stored, stored.members)
        return stored

    async def update_members(
        self,
        user: str,
        chat_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        promote: Sequence[str] = (),
        demote: Sequence[str] = (),
        history_visible: bool | None = None,
    ) -> ChatInfo:
        """Change a group the user belongs to under the rules of
        :mod:`chatcore.pipeline.roles` (anyone leaves; only admins add or remove others,
        promote, demote, change options); raises NotFound, NotMember, InvalidRequest
        (nothing changes)."""
        change = MemberChange(add, remove, promote, demote, history_visible)
        try:
            chat, updated = await self._apply(user, chat_id, change)
        except BaseException:
            if self._cache is not None:
                self._cache.forget(chat_id)  # it may have changed: read it again
            raise
        if self._cache is not None:
            self._cache.changed(updated)
        removed = tuple(m for m in chat.members if not updated.has_member(m))
        audience = tuple(dict.fromkeys((*chat.members, *updated.members)))
        await self._announce(updated, audience, removed=removed)
        return updated

    async def _apply(
        self, user: str, chat_id: str, change: MemberChange
    ) -> tuple[ChatInfo, ChatInfo]:
        """Plan ``change`` on the chat as stored and store it: the chat before and after.

        The roles are written by compare-and-set against the roles the plan was made
        on; when another change won meanwhile, the chat is read and planned again
        (its rules may now refuse the change), at most ``_PLAN_ATTEMPTS`` times.
        """
        for _ in range(_PLAN_ATTEMPTS):
            chat = await self._membership.get_chat(chat_id)
            if chat is None:
                raise NotFound(f"no chat {chat_id!r}")
            visible = chat.roles.history_visible
            hides = not (visible if change.history_visible is None else change.history_visible)
            last = 0
            if hides and change.add and self._settled_last_seq is not None:
                last = await self._settled_last_seq(chat_id)
            planned = plan_change(chat, user, change, last_seq=last)
            if len(planned.members) > self.max_members:
                raise InvalidRequest(f"a group has at most {self.max_members} members")
            updated = chat
            if planned.roles != chat.roles:  # first: who joins hidden history starts late
                updated = await self._membership.set_roles(
                    chat_id, planned.roles, expected=chat.roles
                )
                if updated.roles != planned.roles:
                    continue  # another change of the roles won: plan on what it left
            if change.add or change.remove:
                updated = await self._membership.update_members(
                    chat_id, add=change.add, remove=change.remove
                )
            return chat, updated
        raise Unavailable(f"chat {chat_id!r} kept changing; make the change again")

    async def _announce(
        self, chat: ChatInfo, audience: Sequence[str], *, removed: tuple[str, ...] = ()
    ) -> None:
        last = 0 if self._last_seq is None else await self._last_seq(chat.chat_id)
        await publish_to_members(
            self._bus,
            self._registry,
            self._planner,
            audience,
            ChatEvent(chat, last, removed),
            encode=envelope_bytes,
        )
