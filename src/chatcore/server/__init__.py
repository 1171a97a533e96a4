"""The reference server: WebSockets, the browser client and metrics over a ChatNode.

The I/O shell around :mod:`chatcore.gateway`'s sans-IO session: the ASGI app
(``app``), one WebSocket per connection (``websocket``), what connections share of
their server (``host``), the requests' calls into the node (``handler``) and the
token checks (``auth``). Needs the ``server`` extra.
"""

from chatcore.server.app import ChatServer, ServerSettings, create_app
from chatcore.server.auth import TokenAuthority
from chatcore.server.handler import RequestHandler
from chatcore.server.host import ConnectionHost

__all__ = [
    "ChatServer",
    "ConnectionHost",
    "RequestHandler",
    "ServerSettings",
    "TokenAuthority",
    "create_app",
]
