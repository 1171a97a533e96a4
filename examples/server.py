"""The reference server as a plain ASGI app, for any ASGI server.

    uvicorn examples.server:app --port 8000        # then open http://127.0.0.1:8000/

It is what ``chatcore serve --dev`` runs: a ChatNode on SQLite under ./chatcore-data,
WebSockets at /ws, the browser client at /, /healthz and /metrics. The server code
lives in the library (``chatcore.server``) so that ``pip install 'chatcore[server]'``
brings it; this file shows the few lines that assemble it.

Under another ASGI server the limits of ``chatcore.server.sockets`` (request-header
deadline, TCP reset of stalled clients, log scrubbing) are the server's own to set.
"""

from chatcore.node import NodeOptions
from chatcore.server import ServerSettings, create_app

app = create_app(
    ServerSettings(
        data_dir="./chatcore-data",
        dev=True,  # log in by name; never expose a dev-mode server
        allowed_origins=None,  # own origin only; more: ["https://chat.example.com"]
        node=NodeOptions(max_group_members=256),
    )
)
