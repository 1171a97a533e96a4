"""Creating chats and changing their members, with the rules a chat app expects."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from chatcore._clock import wall_ms
from chatcore.bus._base import GatewayBus
from chatcore.errors import InvalidRequest, NotFound, NotMember
from chatcore.fanout import FanoutPlanner
from chatcore.ids import SnowflakeGenerator
from chatcore.model import ChatInfo, ChatKind, direct_chat_id
from chatcore.pipeline.events import ChatEvent
from chatcore.pipeline.workers import publish_to_members
from chatcore.registry._base import ConnectionRegistry
from chatcore.store._base import MembershipStore

__all__ = ["ChatDirectory"]


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
        planner: FanoutPlanner | None = None,
        max_members: int = 256,
        max_title: int = 200,
    ) -> None:
        self._membership = membership
        self._ids = ids
        self._registry = registry
        self._bus = bus
        self._planner = planner or FanoutPlanner()
        self._last_seq = last_seq
        self.max_members = max_members
        self.max_title = max_title

    async def create(
        self,
        creator: str,
        *,
        kind: ChatKind,
        members: Sequence[str],
        title: str | None = None,
    ) -> ChatInfo:
        """Create (or, for a direct chat, find) a chat; raises InvalidRequest."""
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
            chat = ChatInfo(f"g-{self._ids.next_id()}", "group", (creator, *others), title, now)
        stored = await self._membership.create_chat(chat)
        if stored == chat:  # new: tell the members' devices
            await self._announce(stored, stored.members)
        return stored

    async def update_members(
        self, user: str, chat_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> ChatInfo:
        """Add/remove members of a group the user belongs to; raises NotFound,
        NotMember, InvalidRequest."""
        chat = await self._membership.get_chat(chat_id)
        if chat is None:
            raise NotFound(f"no chat {chat_id!r}")
        if not chat.has_member(user):
            raise NotMember(f"{user!r} is not a member of chat {chat_id!r}")
        if chat.kind == "direct":
            raise InvalidRequest("the members of a direct chat cannot change")
        if any(not m for m in add):
            raise InvalidRequest("member ids must not be empty")
        size = len((set(chat.members) | set(add)) - set(remove))
        if size > self.max_members:
            raise InvalidRequest(f"a group has at most {self.max_members} members")
        updated = await self._membership.update_members(chat_id, add=add, remove=remove)
        await self._announce(updated, tuple(dict.fromkeys((*chat.members, *updated.members))))
        return updated

    async def _announce(self, chat: ChatInfo, audience: Sequence[str]) -> None:
        last = 0 if self._last_seq is None else await self._last_seq(chat.chat_id)
        await publish_to_members(
            self._bus, self._registry, self._planner, audience, ChatEvent(chat, last)
        )
