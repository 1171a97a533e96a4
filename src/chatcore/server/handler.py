"""Answers a session's requests by calling the ChatNode, as wire frames.

The I/O half of a connection's requests: :class:`chatcore.gateway.GatewaySession`
decides which frames are requests (``Handle``), this awaits the node for them.
Every chatcore error becomes an ``error`` frame with its code; the connection stays
open. A request on a chat that does not exist is answered exactly like one on a chat
the user is not a member of (``not_member``), so chat ids cannot be probed. Anything
else is a bug: it is logged and answered with ``internal``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chatcore.errors import (
    BlobNotFound,
    ChatcoreError,
    InvalidRequest,
    MessageNotFound,
    NotFound,
    NotMember,
)
from chatcore.gateway.convert import (
    attachment_from_wire,
    chat_summary,
    chat_view,
    message_frame,
    presence_state,
    synced_chat,
)
from chatcore.gateway.session import error_frame
from chatcore.node import ChatNode
from chatcore.pipeline.hub import LocalConnection
from chatcore.protocol import (
    AcceptedFrame,
    ChatCreate,
    ChatFrame,
    ChatList,
    ChatMembers,
    ClientFrame,
    Delete,
    DeviceKeyView,
    Edit,
    ErrorFrame,
    History,
    HistoryPageFrame,
    KeysFetch,
    KeysFrame,
    KeysPublish,
    KeysRevoke,
    ListChats,
    Message,
    Ok,
    PresenceFrame,
    PresenceSubscribe,
    PresenceUnsubscribe,
    PushRegister,
    PushUnregister,
    React,
    Receipt,
    Send,
    ServerFrame,
    Sync,
    Synced,
    Typing,
    Unreact,
    UserKeysView,
)
from chatcore.push import WebPushKeys

__all__ = ["RequestHandler"]

logger = logging.getLogger(__name__)


class RequestHandler:
    """Maps request frames to ChatNode calls for one connection."""

    __slots__ = ("_links", "conn", "node")  # one per connection: no __dict__

    def __init__(
        self,
        node: ChatNode,
        conn: LocalConnection,
        *,
        links: Callable[[Message], Message] | None = None,
    ) -> None:
        """``links`` signs the attachment URLs of the messages it answers with."""
        self.node = node
        self.conn = conn
        self._links = links or _unchanged

    async def handle(self, frame: ClientFrame, *, waited_s: float = 0.0) -> list[ServerFrame]:
        """The frames that answer ``frame`` (possibly none); ``waited_s``: how long it
        waited at the gateway behind the connection's earlier frames. A ``send`` that
        waited longer than the node's delivery-lag bound is refused as ``overloaded``
        (its message would reach its recipients late whatever happens next)."""
        try:
            lag = self.node.delivery_lag
            if waited_s > 0 and lag is not None and isinstance(frame, Send):
                lag.check_waited(round(waited_s * 1000))
            return await self._handle(frame)
        except (MessageNotFound, BlobNotFound) as exc:  # the user is a member: they may know
            return [error_frame(exc, getattr(frame, "id", None))]
        except NotFound as exc:  # a chat's existence is not told to non-members
            chat = getattr(frame, "chat", None)
            hidden = NotMember(f"{self.conn.user!r} is not a member of chat {chat!r}")
            return [
                error_frame(hidden if isinstance(chat, str) else exc, getattr(frame, "id", None))
            ]
        except ChatcoreError as exc:
            return [error_frame(exc, getattr(frame, "id", None))]
        except Exception:
            logger.exception("internal error handling %s", type(frame).__name__)
            return [ErrorFrame(id=getattr(frame, "id", None), code="internal", message="internal")]

    async def _handle(self, frame: ClientFrame) -> list[ServerFrame]:
        node, user = self.node, self.conn.user
        match frame:
            case Send():
                accepted = await node.send(
                    user,
                    frame.chat,
                    client_msg_id=frame.client_msg_id,
                    body=frame.body,
                    kind=frame.kind,
                    attachment=attachment_from_wire(frame.attachment),
                    encrypted=frame.encrypted,
                    device=self.conn.device,
                    retry=frame.retry,
                )
                return [
                    AcceptedFrame(
                        id=frame.id,
                        chat=frame.chat,
                        client_msg_id=frame.client_msg_id,
                        message_id=str(accepted.message_id),
                    )
                ]
            case Edit() | Delete() | React() | Unreact():
                return [await self._change(frame)]
            case Receipt():
                await node.receipt(user, frame.chat, frame.status, frame.seq)
                return [] if frame.id is None else [Ok(id=frame.id)]
            case History():
                page = await node.history(
                    user, frame.chat, before=frame.before, after=frame.after, limit=frame.limit
                )
                messages = [self._links(message_frame(m)) for m in page.messages]
                return [
                    HistoryPageFrame(
                        id=frame.id, chat=frame.chat, messages=messages, has_more=page.has_more
                    )
                ]
            case Sync():
                result = await node.sync(user, frame.cursors)
                frames: list[ServerFrame] = [self._links(message_frame(m)) for m in result.messages]
                frames.append(Synced(id=frame.id, chats=[synced_chat(s) for s in result.chats]))
                return frames
            case ListChats():
                states = await node.chats(user)
                return [ChatList(id=frame.id, chats=[chat_summary(s) for s in states])]
            case ChatCreate():
                chat = await node.create_chat(
                    user,
                    kind=frame.kind,
                    members=frame.members,
                    title=frame.title,
                    history_visible=frame.history_visible,
                )
                state = await node.chat(user, chat.chat_id)
                return [ChatFrame(id=frame.id, chat=chat_view(chat, state.last_seq))]
            case ChatMembers():
                chat = await node.update_members(
                    user,
                    frame.chat,
                    add=frame.add,
                    remove=frame.remove,
                    promote=frame.promote,
                    demote=frame.demote,
                    history_visible=frame.history_visible,
                )
                last = await node.last_seq(chat.chat_id)
                return [ChatFrame(id=frame.id, chat=chat_view(chat, last))]
            case PresenceSubscribe():
                presence = await node.watch_presence(self.conn, frame.users)
                wire = [presence_state(p) for p in presence]
                return [PresenceFrame(id=frame.id, states=wire)]
            case PresenceUnsubscribe():
                node.unwatch_presence(self.conn, frame.users)
                return [Ok(id=frame.id)]
            case Typing():
                await node.typing(user, frame.chat)
                return [] if frame.id is None else [Ok(id=frame.id)]
            case PushRegister():
                keys = (
                    None if frame.keys is None else WebPushKeys(frame.keys.p256dh, frame.keys.auth)
                )
                await node.register_push(
                    user, self.conn.device, kind=frame.kind, token=frame.token, keys=keys
                )
                return [Ok(id=frame.id)]
            case PushUnregister():
                await node.unregister_push(user, self.conn.device)
                return [Ok(id=frame.id)]
            case KeysPublish() | KeysFetch() | KeysRevoke():
                return await self._keys(frame)
        raise InvalidRequest(f"{type(frame).__name__} is not a request")

    async def _change(self, frame: Edit | Delete | React | Unreact) -> AcceptedFrame:
        """An ``edit``, ``delete``, ``react`` or ``unreact``: a lifecycle event appended."""
        node, user, device = self.node, self.conn.user, self.conn.device
        match frame:
            case Edit():
                accepted = await node.edit(
                    user,
                    frame.chat,
                    frame.seq,
                    frame.body,
                    encrypted=frame.encrypted,
                    device=device,
                )
            case Delete():
                accepted = await node.delete(user, frame.chat, frame.seq, device=device)
            case React() | Unreact():
                accepted = await node.react(
                    user,
                    frame.chat,
                    frame.seq,
                    frame.emoji,
                    remove=isinstance(frame, Unreact),
                    device=device,
                )
        return AcceptedFrame(
            id=frame.id,
            chat=frame.chat,
            client_msg_id=accepted.client_msg_id,
            message_id=str(accepted.message_id),
        )

    async def _keys(self, frame: KeysPublish | KeysFetch | KeysRevoke) -> list[ServerFrame]:
        node, user, device = self.node, self.conn.user, self.conn.device
        match frame:
            case KeysPublish():
                await node.publish_key(
                    user, device, version=frame.version, public_key=frame.public_key
                )
                return [Ok(id=frame.id)]
            case KeysFetch():
                found = await (
                    node.fetch_keys(user, frame.users)
                    if frame.chat is None
                    else node.fetch_chat_keys(user, frame.chat)
                )
                users = [
                    UserKeysView(
                        user=u,
                        devices=[
                            DeviceKeyView(
                                device=k.device, version=k.version, public_key=k.public_key
                            )
                            for k in keys
                        ],
                    )
                    for u, keys in found.items()
                ]
                return [KeysFrame(id=frame.id, users=users)]
            case KeysRevoke():
                await node.revoke_key(user, frame.device or device, by_device=device)
                return [Ok(id=frame.id)]


def _unchanged(frame: Message) -> Message:
    return frame
