"""The gateway: the sans-IO client session, its tokens, and its requests to the node."""

from chatcore.gateway.auth import TokenAuthority
from chatcore.gateway.service import RequestHandler
from chatcore.gateway.session import (
    Action,
    Close,
    CloseCode,
    GatewaySession,
    Handle,
    Opened,
    Reply,
    SessionLimits,
    SessionState,
)

__all__ = [
    "Action",
    "Close",
    "CloseCode",
    "GatewaySession",
    "Handle",
    "Opened",
    "Reply",
    "RequestHandler",
    "SessionLimits",
    "SessionState",
    "TokenAuthority",
]
