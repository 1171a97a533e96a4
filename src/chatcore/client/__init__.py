"""The async Python client SDK for the chatcore wire protocol (docs/client.md).

Layout: ``_client`` holds :class:`ChatClient` (the public API and the task that
keeps a session open); ``_session`` one welcomed connection (handshake, replies
by ``id``); ``_delivery`` the task that hands events to the app in order and
fills gaps from history; ``_state`` the pure bookkeeping (cursors, gaps, the
send outbox); ``_backoff`` the pure reconnect policy; ``_transport`` the
WebSocket under it all, the only module that imports ``websockets``.
"""

from chatcore.client._backoff import Backoff, Reconnect, reconnect_after
from chatcore.client._client import ChatClient, TokenProvider
from chatcore.client._events import (
    ChatUpdated,
    ClientEvent,
    Connected,
    DeviceKeysChanged,
    Disconnected,
    HistorySkipped,
    MessageReceived,
    PresenceChanged,
    ReceiptChanged,
    ServerError,
    SyncCompleted,
    TypingStarted,
)
from chatcore.client._lifecycle import apply_change
from chatcore.client._media import MediaUpload
from chatcore.client._options import ClientOptions
from chatcore.client._transport import Connector, Transport, WebSocketTransport, connect_websocket
from chatcore.errors import ConnectionClosed

__all__ = [
    "apply_change",
    # the client
    "ChatClient",
    "ClientOptions",
    "MediaUpload",
    "TokenProvider",
    # events
    "ChatUpdated",
    "ClientEvent",
    "Connected",
    "DeviceKeysChanged",
    "Disconnected",
    "HistorySkipped",
    "MessageReceived",
    "PresenceChanged",
    "ReceiptChanged",
    "ServerError",
    "SyncCompleted",
    "TypingStarted",
    # errors
    "ConnectionClosed",
    # transport and reconnect policy (for custom transports and tests)
    "Backoff",
    "Connector",
    "Reconnect",
    "Transport",
    "WebSocketTransport",
    "connect_websocket",
    "reconnect_after",
]
