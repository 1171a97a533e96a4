"""Members who are not connected: the offline index, push notifiers and push coalescing.

``coalesce`` is pure (time passed in). Backends needing an extra library (``redis``)
are imported by module name. The notifiers that reach devices or a webhook are in
:mod:`chatcore.push`.
"""

from chatcore.offline._base import OfflineIndex, PendingChat, PushNotification, PushNotifier
from chatcore.offline.coalesce import DEFAULT_WINDOW_MS, PushCoalescer
from chatcore.offline.log import LoggingPushNotifier
from chatcore.offline.memory import MemoryOfflineIndex, MemoryPushNotifier

__all__ = [
    "DEFAULT_WINDOW_MS",
    "LoggingPushNotifier",
    "MemoryOfflineIndex",
    "MemoryPushNotifier",
    "OfflineIndex",
    "PendingChat",
    "PushCoalescer",
    "PushNotification",
    "PushNotifier",
]
