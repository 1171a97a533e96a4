"""What each push service is sent for a notification, pure: text, payloads, size bounds.

The text is "12 new messages from Alice" (title) and the last message's preview (body).
A notification of an encrypted message has no body whatever its ``preview`` says:
the privacy rule holds here even if a caller forgot to drop the preview.

Each service bounds its payload (APNs 4096 bytes, FCM 4096 bytes, Web Push 4096 bytes
of ciphertext: 3993 of plaintext under aes128gcm with one record). Names and previews
are cut first (at most three senders named, each at most 64 characters, previews 200);
a payload still over its limit loses its body, then is refused with ``InvalidRequest``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.offline._base import PushNotification

__all__ = [
    "APNS_MAX_BYTES",
    "FCM_MAX_BYTES",
    "WEBPUSH_MAX_BYTES",
    "PushText",
    "apns_payload",
    "fcm_message",
    "push_text",
    "summary",
    "webhook_payload",
    "webpush_payload",
]

APNS_MAX_BYTES = 4096
FCM_MAX_BYTES = 4096
WEBPUSH_MAX_BYTES = 3993
"""4096 bytes of aes128gcm ciphertext less its 86-byte header, 16-byte tag and delimiter."""

_NAMED_SENDERS = 3
_NAME_CHARS = 64
_PREVIEW_CHARS = 200

_encode = msgspec.json.encode


class PushText(msgspec.Struct, frozen=True):
    """What a device shows: ``title`` ("3 new messages from Alice and Bob") and ``body``."""

    title: str
    body: str | None = None


def summary(notification: PushNotification) -> str:
    """ "1 new message from Alice", "3 new messages from Alice and Bob", "… and 2 others"."""
    n = notification.count
    noun = "message" if n == 1 else "messages"
    names = [_cut(s, _NAME_CHARS) for s in notification.senders]
    if len(names) > _NAMED_SENDERS:
        others = len(names) - (_NAMED_SENDERS - 1)
        names = [*names[: _NAMED_SENDERS - 1], f"{others} others"]
    if not names:
        return f"{n} new {noun}"
    who = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{n} new {noun} from {who}"


def push_text(notification: PushNotification) -> PushText:
    """The title and body for ``notification``; never a body for an encrypted message."""
    preview = None if notification.encrypted else notification.preview
    return PushText(summary(notification), _cut(preview, _PREVIEW_CHARS) if preview else None)


def webhook_payload(notification: PushNotification) -> dict[str, Any]:
    """One notification as the webhook's JSON object (see docs/push.md)."""
    text = push_text(notification)
    return {
        "user": notification.user,
        "chat_id": notification.chat_id,
        "count": notification.count,
        "senders": list(notification.senders),
        "last_seq": notification.last_seq,
        "encrypted": notification.encrypted,
        "title": text.title,
        "body": text.body,
    }


def webpush_payload(notification: PushNotification) -> bytes:
    """The JSON a service worker receives: ``{"title", "body", "data": {...}}``."""

    def build(text: PushText) -> bytes:
        return _encode({"title": text.title, "body": text.body, "data": _data(notification)})

    return _fit(build, push_text(notification), WEBPUSH_MAX_BYTES, "web push")


def fcm_message(notification: PushNotification, token: str) -> dict[str, Any]:
    """The FCM HTTP v1 ``messages:send`` body for ``token``."""

    def build(text: PushText) -> bytes:
        return _encode(
            {
                "message": {
                    "token": token,
                    "notification": _shown(text),
                    "data": {k: str(v) for k, v in _data(notification).items()},
                    "android": {"collapse_key": notification.chat_id[:100]},
                }
            }
        )

    message: dict[str, Any] = msgspec.json.decode(
        _fit(build, push_text(notification), FCM_MAX_BYTES, "fcm")
    )
    return message


def apns_payload(notification: PushNotification) -> bytes:
    """The APNs JSON: an ``aps`` alert threaded per chat, and the chat's position."""

    def build(text: PushText) -> bytes:
        aps = {"alert": _shown(text), "sound": "default", "thread-id": notification.chat_id}
        return _encode({"aps": aps, **_data(notification)})

    return _fit(build, push_text(notification), APNS_MAX_BYTES, "apns")


def _shown(text: PushText) -> dict[str, str]:
    return {"title": text.title} if text.body is None else {"title": text.title, "body": text.body}


def _data(notification: PushNotification) -> dict[str, str | int]:
    return {
        "chat_id": notification.chat_id,
        "last_seq": notification.last_seq,
        "count": notification.count,
    }


def _fit(build: Callable[[PushText], bytes], text: PushText, limit: int, service: str) -> bytes:
    payload = build(text)
    if len(payload) <= limit:
        return payload
    payload = build(PushText(text.title))
    if len(payload) <= limit:
        return payload
    raise InvalidRequest(f"a {service} payload is {len(payload)} bytes, over its {limit}")


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"
