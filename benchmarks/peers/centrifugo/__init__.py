"""Centrifugo v6 as a peer: its configuration and its command line.

The binary comes from :func:`benchmarks.builds.centrifugo_binary`. The configuration
is the smallest that runs the fanout scenario: the memory engine (the default),
HS256 client tokens signed with the same key as chatcore's (so the load generators
make one kind of token for both), and one namespace, ``bench``, in which clients
may subscribe and publish. No history, presence or recovery (chatcore's fanout keeps
its log, so Centrifugo does strictly less work per message), no permessage-deflate
(as no other target), logs at ``warn``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

__all__ = ["NAMESPACE", "URL_PATH", "command", "config", "free_port", "write_config"]

NAMESPACE = "bench"
"""The namespace of every benchmark channel (``bench:<room>``)."""
URL_PATH = "/connection/websocket"
"""Where Centrifugo serves its bidirectional WebSocket."""


def config(port: int, secret: str) -> dict[str, object]:
    """Centrifugo's configuration for one benchmark target on ``127.0.0.1:port``."""
    return {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "warn"},
        "engine": {"type": "memory"},
        "client": {"token": {"hmac_secret_key": secret}},  # the clients send no Origin
        "channel": {
            "namespaces": [
                {
                    "name": NAMESPACE,
                    "allow_subscribe_for_client": True,
                    "allow_publish_for_client": True,
                }
            ]
        },
        "health": {"enabled": True},
    }


def write_config(folder: Path, port: int, secret: str) -> Path:
    """Write the configuration for ``port`` into ``folder``; its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"centrifugo-{port}.json"
    path.write_text(json.dumps(config(port, secret), indent=2))
    return path


def command(binary: Path, config_file: Path) -> list[str]:
    """The command line that runs Centrifugo with ``config_file``."""
    return [str(binary), "--config", str(config_file)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
