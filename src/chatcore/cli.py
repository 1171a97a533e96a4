"""The ``chatcore`` command: run the reference server, mint tokens, print the schema."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="chatcore",
    help="chatcore: real-time chat on embedded or production backends.",
    no_args_is_help=True,
    add_completion=False,
)

DataOption = Annotated[
    Path,
    typer.Option("--data", help="Folder of the embedded backends' files.", show_default=True),
]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data: DataOption = Path("./chatcore-data"),
    memory: Annotated[bool, typer.Option("--memory", help="Keep everything in memory.")] = False,
    dev: Annotated[
        bool, typer.Option("--dev", help="Dev mode: log in by name in the browser page.")
    ] = False,
    origin: Annotated[
        list[str] | None,
        typer.Option("--origin", help="Allowed browser origin (repeat; default any)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the reference server: WebSockets at /ws, the browser client at /."""
    from chatcore.server import ServerSettings
    from chatcore.server.run import build_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = ServerSettings(
        data_dir=None if memory else data, dev=dev, allowed_origins=origin or None
    )
    server = build_server(settings, host=host, port=port, log_level=log_level)
    where = "memory" if memory else str(data)
    typer.echo(f"chatcore serving on http://{host}:{port}/  (data: {where}, dev: {dev})")
    if dev:
        typer.echo(f"open http://{host}:{port}/ in a browser and log in by any name")
    server.run()


@app.command()
def token(
    user: Annotated[str, typer.Argument(help="The user id (the token's sub).")],
    ttl: Annotated[int, typer.Option(help="Seconds the token is valid.")] = 24 * 3600,
    data: DataOption = Path("./chatcore-data"),
    dev: Annotated[bool, typer.Option("--dev", help="Use the dev key of --data.")] = False,
) -> None:
    """Print a token for USER, signed with CHATCORE_SECRET (or the dev key)."""
    from chatcore.errors import ChatcoreError
    from chatcore.gateway.auth import TokenAuthority

    try:
        authority = TokenAuthority.from_environment(data, dev=dev)
        typer.echo(authority.issue(user, ttl_s=ttl))
    except ChatcoreError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def schema() -> None:
    """Print the JSON Schema of every wire frame."""
    from chatcore.protocol import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
