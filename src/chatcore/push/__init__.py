"""Push notifications to devices that are not connected.

Layout: ports in ``_base`` (``PushTokenStore``, ``PushSender``); pure rules in
``targets`` (what a target may look like), ``render`` (text and payloads, sizes, the
privacy rule) and ``signature`` (the webhook's HMAC); the token store's backends as
siblings (``memory``, ``sqlite``, ``redis``, ``cassandra``); one module per push
service (``webhook``, ``webpush``, ``fcm``, ``apns``, needing the ``push`` extra and
imported by module name); ``notifier``, the ``PushNotifier`` that ties a store to the
senders; ``group`` (several notifiers as one) and ``config`` (the ``[push]`` settings
that build them).
"""

from chatcore.push._base import (
    PushKind,
    PushOutcome,
    PushSender,
    PushStats,
    PushTarget,
    PushTokenStore,
    WebPushKeys,
)
from chatcore.push.config import PushConfig
from chatcore.push.group import PushNotifierGroup
from chatcore.push.memory import MemoryPushTokenStore
from chatcore.push.notifier import DevicePushNotifier
from chatcore.push.render import PushText, push_text, summary
from chatcore.push.signature import SIGNATURE_HEADER, sign_webhook, verify_webhook
from chatcore.push.targets import WEBPUSH_SERVICES, TargetRules, check_target

__all__ = [
    "SIGNATURE_HEADER",
    "WEBPUSH_SERVICES",
    "DevicePushNotifier",
    "MemoryPushTokenStore",
    "PushConfig",
    "PushKind",
    "PushNotifierGroup",
    "PushOutcome",
    "PushSender",
    "PushStats",
    "PushTarget",
    "PushText",
    "PushTokenStore",
    "TargetRules",
    "WebPushKeys",
    "check_target",
    "push_text",
    "sign_webhook",
    "summary",
    "verify_webhook",
]
