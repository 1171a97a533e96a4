"""The gateway, sans-IO: the client session state machine and the frame conversions.

Nothing here does I/O or knows the pipeline: :mod:`chatcore.gateway.session` turns
bytes into actions, :mod:`chatcore.gateway.convert` turns domain values and events
into wire frames. The I/O shell around them (sockets, token checks, the requests'
calls into a ``ChatNode``) is :mod:`chatcore.server`. ``tests/test_layering.py``
keeps it that way.
"""

from chatcore.gateway.session import (
    Action,
    Close,
    CloseCode,
    GatewaySession,
    Handle,
    Identity,
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
    "Identity",
    "Opened",
    "Reply",
    "SessionLimits",
    "SessionState",
]
