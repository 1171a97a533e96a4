"""The reference server: WebSockets, the browser client and metrics over a ChatNode.

The I/O shell around :mod:`chatcore.gateway`'s sans-IO session: the ASGI app
(``app``), one WebSocket per connection (``websocket``), what connections share of
their server (``host``), the requests' calls into the node (``handler``), the
token checks (``auth``) and media uploads and signed downloads (``media``). Needs
the ``server`` extra (which pulls ``media``).
"""

from chatcore._extras import missing_extra

try:
    import jwt  # noqa: F401
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("server", exc, needed_by="chatcore.server") from exc

from chatcore.server.app import ChatServer, ServerSettings, create_app
from chatcore.server.auth import TokenAuthority
from chatcore.server.handler import RequestHandler
from chatcore.server.host import ConnectionHost
from chatcore.server.media import MediaSettings

__all__ = [
    "ChatServer",
    "ConnectionHost",
    "MediaSettings",
    "RequestHandler",
    "ServerSettings",
    "TokenAuthority",
    "create_app",
]
