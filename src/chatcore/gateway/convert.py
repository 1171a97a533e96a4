"""Pure mapping between domain values / pipeline events and wire frames."""

from __future__ import annotations

from typing import Any

from chatcore import model
from chatcore.events import (
    ChatEvent,
    Event,
    KeysChangedEvent,
    MessageEvent,
    PresenceEvent,
    ReceiptEvent,
    TypingEvent,
)
from chatcore.protocol import (
    AttachmentView,
    ChatFrame,
    ChatSummary,
    ChatView,
    KeysChanged,
    MemberWatermarks,
    Message,
    PresenceFrame,
    PresenceView,
    ReactionView,
    ReceiptUpdate,
    ServerFrame,
    SyncedChat,
    TypingUpdate,
)

__all__ = [
    "attachment_from_wire",
    "chat_summary",
    "chat_view",
    "event_frame",
    "message_frame",
    "presence_state",
    "synced_chat",
]


def attachment_from_wire(a: AttachmentView | None) -> model.Attachment | None:
    """The attachment a client sent (a ``url`` is kept for the Router to refuse)."""
    if a is None:
        return None
    return model.Attachment(
        a.url or "", a.name, a.size, a.mime, blob=a.blob or "", thumbnail=a.thumbnail
    )


def _attachment_to_wire(a: model.Attachment | None) -> AttachmentView | None:
    """A stored attachment without links (the server signs ``url``s per member)."""
    if a is None:
        return None
    return AttachmentView(
        url=a.url or None,
        name=a.name,
        size=a.size,
        mime=a.mime,
        blob=a.blob or None,
        thumbnail=a.thumbnail,
    )


def message_frame(m: model.StoredMessage) -> Message:
    return Message(
        chat=m.chat_id,
        seq=m.seq,
        message_id=str(m.message_id),
        sender=m.sender,
        client_msg_id=m.client_msg_id,
        kind=m.kind,
        body=m.body,
        ts=m.ts,
        attachment=_attachment_to_wire(m.attachment),
        encrypted=m.encrypted,
        target=m.target or None,
        edited_ts=m.edited_ts or None,
        deleted=m.deleted,
        reactions=[ReactionView(emoji=e, users=list(users)) for e, users in m.reactions],
        changed_seq=m.changed_seq or None,
    )


def chat_view(chat: model.ChatInfo, last_seq: int) -> ChatView:
    return ChatView(
        chat=chat.chat_id,
        kind=chat.kind,
        members=list(chat.members),
        title=chat.title,
        last_seq=last_seq,
        **_roles(chat),
    )


def _roles(chat: model.ChatInfo) -> dict[str, Any]:
    if chat.kind != "group":
        return {}
    return {
        "creator": chat.creator() or None,
        "admins": list(chat.admins()),
        "history_visible": chat.roles.history_visible,
    }


def chat_summary(state: model.ChatState) -> ChatSummary:
    c = state.chat
    return ChatSummary(
        chat=c.chat_id,
        kind=c.kind,
        members=list(c.members),
        title=c.title,
        last_seq=state.last_seq,
        **_roles(c),
        read_seq=state.read_seq,
        delivered_seq=state.delivered_seq,
        unread=state.unread,
        watermarks=[
            MemberWatermarks(user=w.user, delivered_seq=w.delivered_seq, read_seq=w.read_seq)
            for w in state.others
        ],
    )


def synced_chat(state: model.ChatState) -> SyncedChat:
    return SyncedChat(
        chat=state.chat.chat_id,
        last_seq=state.last_seq,
        read_seq=state.read_seq,
        delivered_seq=state.delivered_seq,
        unread=state.unread,
        truncated=state.truncated,
    )


def presence_state(p: model.PresenceState) -> PresenceView:
    return PresenceView(
        user=p.user, status="online" if p.online else "offline", last_seen=p.last_seen
    )


def event_frame(event: Event) -> ServerFrame:
    """The push frame a client gets for a pipeline event."""
    match event:
        case MessageEvent(message=m):
            return message_frame(m)
        case ReceiptEvent(chat_id=chat, user=user, status=status, seq=seq, ts=ts):
            return ReceiptUpdate(chat=chat, user=user, status=status, seq=seq, ts=ts)
        case ChatEvent(chat=chat, last_seq=last_seq):
            return ChatFrame(chat=chat_view(chat, last_seq))
        case TypingEvent(chat_id=chat, user=user):
            return TypingUpdate(chat=chat, user=user)
        case PresenceEvent(states=states):
            return PresenceFrame(states=[presence_state(s) for s in states])
        case KeysChangedEvent(user=user, device=device, version=version, public_key=key):
            return KeysChanged(user=user, device=device, version=version, public_key=key)
