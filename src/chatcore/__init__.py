"""chatcore: typed building blocks for real-time chat systems.

Layout: one package per area (``ids``, ``protocol``, ``log``, ``store``, ``presence``,
``registry``, ``bus``, ``cache``, ``offline``, ``fanout``, ``receipts``, ``pipeline``).
Each stateful area has its port (a ``typing.Protocol``) in ``<area>/_base.py`` and its
backends as sibling modules (``memory``, ``sqlite``, ``redis``, ``kafka``, ``cassandra``).
Pure logic (Snowflake packing, fanout planning, receipt aggregation, presence rules,
the ``gateway`` session) does no I/O. ``model`` and ``events`` are the values every
layer shares. ``ChatNode`` assembles the whole pipeline over a chosen set of backends;
``server`` is the I/O shell around the gateway (it needs the ``server`` extra).
"""

from chatcore.backends import Backends
from chatcore.errors import (
    ChatcoreClosed,
    ChatcoreError,
    ClockMovedBackwards,
    ConnectionClosed,
    Fenced,
    FrameTooLarge,
    InvalidRequest,
    NotFound,
    NotMember,
    Overloaded,
    ProtocolError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from chatcore.model import (
    Attachment,
    ChatInfo,
    Connection,
    PresenceState,
    StoredMessage,
    Watermarks,
    direct_chat_id,
)
from chatcore.node import ChatNode, NodeOptions

__version__ = "0.1.0"

__all__ = [
    "Attachment",
    "Backends",
    "ChatInfo",
    "ChatNode",
    "ChatcoreClosed",
    "ChatcoreError",
    "ClockMovedBackwards",
    "Connection",
    "ConnectionClosed",
    "Fenced",
    "FrameTooLarge",
    "InvalidRequest",
    "NodeOptions",
    "NotFound",
    "NotMember",
    "Overloaded",
    "PresenceState",
    "ProtocolError",
    "RateLimited",
    "StoredMessage",
    "Unauthorized",
    "Unavailable",
    "Watermarks",
    "direct_chat_id",
]
