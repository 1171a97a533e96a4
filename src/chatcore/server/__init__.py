"""The reference server: WebSockets, the browser client and metrics over a ChatNode."""

from chatcore.server.app import ChatServer, ServerSettings, create_app

__all__ = ["ChatServer", "ServerSettings", "create_app"]
