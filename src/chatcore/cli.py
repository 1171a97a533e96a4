"""The ``chatcore`` command: servers, gateways and workers, tokens, the schema.

``serve`` runs every stage in one process (embedded backends by default); on the
production backends ``gateway`` and ``worker`` run them as separate processes, and
``init`` creates the topics and the keyspace once.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import signal
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio

from chatcore._extras import missing_extra

try:
    import typer
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("server", exc, needed_by="the chatcore command") from exc

from chatcore._gc import freeze_startup_objects, tune_gc
from chatcore.pipeline.stages import STAGES

if TYPE_CHECKING:
    from chatcore.config import ProductionConfig
    from chatcore.node import Role
    from chatcore.push.config import PushConfig
    from chatcore.server import ServerSettings

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


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML file of the settings ([production] and [push] tables)."),
]
HostOption = Annotated[str, typer.Option(help="Interface to listen on.")]
PortOption = Annotated[int, typer.Option(help="TCP port.")]
DevOption = Annotated[
    bool, typer.Option("--dev", help="Dev mode: log in by name in the browser page.")
]
OriginOption = Annotated[
    list[str] | None,
    typer.Option(
        "--origin",
        help="Another browser origin allowed on /ws, exact (repeat; the own origin always is).",
    ),
]
LogOption = Annotated[str, typer.Option(help="Log level.")]
AsgiOption = Annotated[
    bool,
    typer.Option(
        "--asgi",
        help="Serve /ws through the ASGI app on uvicorn instead of the fast path (picows).",
    ),
]
WORKER_ROLES = tuple(stage.role for stage in STAGES)


class Backend(enum.StrEnum):
    embedded = "embedded"
    production = "production"


@app.command()
def serve(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    data: DataOption = Path("./chatcore-data"),
    memory: Annotated[bool, typer.Option("--memory", help="Keep everything in memory.")] = False,
    backend: Annotated[
        Backend, typer.Option(help="embedded: SQLite/memory; production: Kafka+Cassandra+Redis.")
    ] = Backend.embedded,
    config: ConfigOption = None,
    dev: DevOption = False,
    origin: OriginOption = None,
    log_level: LogOption = "info",
    asgi: AsgiOption = False,
) -> None:
    """Run the reference server (every stage in this process): /ws, the browser client at /."""
    if backend is Backend.production:
        _serve_production(
            config,
            roles=None,
            host=host,
            port=port,
            dev=dev,
            origin=origin,
            log_level=log_level,
            asgi=asgi,
        )
        return
    from chatcore.server import ServerSettings

    settings = ServerSettings(
        data_dir=None if memory else data,
        dev=dev,
        allowed_origins=origin or None,
        push=_load_push(config),
    )
    where = "memory" if memory else str(data)
    _run_server(settings, host, port, log_level, f"data: {where}", asgi=asgi)


@app.command()
def gateway(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8000,
    config: ConfigOption = None,
    dev: DevOption = False,
    origin: OriginOption = None,
    log_level: LogOption = "info",
    asgi: AsgiOption = False,
) -> None:
    """Run a gateway on the production backends (WebSockets and the Router only)."""
    _serve_production(
        config,
        roles=frozenset({"gateway"}),
        host=host,
        port=port,
        dev=dev,
        origin=origin,
        log_level=log_level,
        asgi=asgi,
    )


@app.command()
def worker(
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help=f"Stages to run (repeat): {', '.join(WORKER_ROLES)}."),
    ] = None,
    config: ConfigOption = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve Prometheus /metrics on this port (all interfaces)."),
    ] = None,
    log_level: LogOption = "info",
) -> None:
    """Run pipeline workers on the production backends until SIGINT/SIGTERM."""
    roles = tuple(role or WORKER_ROLES)
    unknown = set(roles) - set(WORKER_ROLES)
    if unknown:
        raise typer.BadParameter(f"unknown roles {sorted(unknown)}", param_hint="--role")
    _logging(log_level)
    production = _load_config(config)
    push = _load_push(config)
    tune_gc()

    async def run() -> None:
        from chatcore.backends import production_backends
        from chatcore.node import ChatNode, NodeOptions

        backends = await production_backends(production, push_rules=push.rules())
        try:
            backends.push = await push.notifier(backends.push_tokens)
        except BaseException:
            for extra in backends.extra:
                await extra.aclose()
            raise
        options = NodeOptions.from_config(production, roles=frozenset(roles))  # type: ignore[arg-type]
        metrics = None
        if metrics_port is not None:
            from prometheus_client import start_http_server

            from chatcore.server.metrics import ServerMetrics

            metrics = ServerMetrics()
            start_http_server(metrics_port, registry=metrics.registry)
            options = replace(options, telemetry=metrics)
        async with ChatNode(backends, options) as node, anyio.create_task_group() as tg:
            if metrics is not None:
                from chatcore.server.metrics import watch_lag

                tg.start_soon(watch_lag, node, metrics)
            freeze_startup_objects()
            typer.echo(f"chatcore worker running: {', '.join(roles)}")
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    break
            tg.cancel_scope.cancel()
        typer.echo("chatcore worker stopped")

    anyio.run(run)


@app.command()
def init(config: ConfigOption = None, log_level: LogOption = "warning") -> None:
    """Create the Kafka topics and the Cassandra keyspace and tables (idempotent)."""
    _logging(log_level)
    production = _load_config(config)

    async def run() -> None:
        from chatcore.backends import production_backends
        from chatcore.node import create_topics
        from chatcore.pipeline.records import Topics

        backends = await production_backends(production, create_schema=True)
        try:
            async with backends.log:
                await create_topics(
                    backends.log,
                    Topics.prefixed(production.topic_prefix),
                    partitions=production.partitions,
                )
        finally:
            for extra in backends.extra:
                await extra.aclose()
        typer.echo(
            f"ready: {production.partitions} partitions on {production.kafka_bootstrap}, "
            f"keyspace {production.cassandra_keyspace} on {','.join(production.cassandra_hosts)}"
        )

    anyio.run(run)


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")


def _load_config(path: Path | None) -> ProductionConfig:
    from chatcore.config import ProductionConfig
    from chatcore.errors import ChatcoreError

    try:
        return ProductionConfig.load(path)
    except ChatcoreError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


def _load_push(path: Path | None) -> PushConfig:
    from chatcore.errors import ChatcoreError
    from chatcore.push.config import PushConfig

    try:
        return PushConfig.load(path)
    except ChatcoreError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc


def _serve_production(
    config: Path | None,
    *,
    roles: frozenset[Role] | None,
    host: str,
    port: int,
    dev: bool,
    origin: list[str] | None,
    log_level: str,
    asgi: bool,
) -> None:
    from chatcore.backends import production_backends
    from chatcore.node import NodeOptions
    from chatcore.server import ServerSettings

    if not os.environ.get("CHATCORE_SECRET"):
        typer.echo("error: set CHATCORE_SECRET (every gateway must share it)", err=True)
        raise typer.Exit(2)
    production = _load_config(config)
    push = _load_push(config)
    settings = ServerSettings(
        data_dir=None,
        dev=dev,
        allowed_origins=origin or None,
        node=NodeOptions.from_config(production, roles=roles),
        backends=lambda: production_backends(production, push_rules=push.rules()),
        push=push,
    )
    what = "gateway" if roles == frozenset({"gateway"}) else "all stages"
    _run_server(settings, host, port, log_level, f"production backends, {what}", asgi=asgi)


def _run_server(
    settings: ServerSettings, host: str, port: int, log_level: str, what: str, *, asgi: bool
) -> None:
    from chatcore.server.run import build_server

    _logging(log_level)
    server = build_server(settings, host=host, port=port, log_level=log_level, native=not asgi)
    path = "ASGI" if asgi else "fast path"
    typer.echo(
        f"chatcore serving on http://{host}:{port}/  ({what}, /ws: {path}, dev: {settings.dev})"
    )
    if settings.dev:
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
    from chatcore.server.auth import TokenAuthority

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


@app.command()
def plan(
    bench: Annotated[
        Path | None,
        typer.Option("--bench", help="A `chatcore bench` results.json to take figures from."),
    ] = None,
    figure: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="NAME=VALUE for any target or measured figure (repeat), e.g. mau=5e8.",
        ),
    ] = None,
    memory_gib: Annotated[
        float,
        typer.Option("--gateway-memory-gib", help="One gateway's memory, for --bench figures."),
    ] = 8.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Size a deployment: gateways, workers, partitions, brokers, Cassandra, Redis."""
    from chatcore.plan import from_bench, from_figures, render
    from chatcore.plan import plan as make_plan

    try:
        figures: dict[str, str] = {}
        if bench is not None:
            measured = from_bench(json.loads(bench.read_text()), gateway_memory_gib=memory_gib)
            figures.update({name: str(value) for name, value in measured.items()})
        figures.update(_name_value(item) for item in figure or ())
        result = make_plan(*from_figures(figures))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else render(result))


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep:
        raise ValueError(f"--set takes NAME=VALUE, got {item!r}")
    return name.strip(), value.strip()


@app.command()
def sim(
    seeds: Annotated[int, typer.Option(help="How many seeds to run, from --first.")] = 100,
    first: Annotated[int, typer.Option(help="The first seed to run.")] = 0,
    seed: Annotated[
        int | None, typer.Option(help="Run this one seed only (to replay a failure).")
    ] = None,
    messages: Annotated[int, typer.Option(help="Messages each simulated client sends.")] = 10,
    trace: Annotated[bool, typer.Option("--trace", help="Print every run's trace.")] = False,
    regions: Annotated[
        int,
        typer.Option(
            min=1,
            max=2,
            help="2: gateways in a second region reach the pipeline over a WAN "
            "(prints a latency table; see docs/regions.md).",
        ),
    ] = 1,
    wan_rtt_ms: Annotated[
        float, typer.Option(min=0, help="The round trip between the two regions.")
    ] = 100.0,
    faults: Annotated[
        bool, typer.Option("--faults/--no-faults", help="Inject faults (the default).")
    ] = True,
) -> None:
    """Run the deterministic simulation of the whole pipeline under faults.

    Exits 1 at the first seed that breaks an invariant, after printing its shortest
    failing trace and the command that replays it (see docs/reliability.md).
    """
    from chatcore.sim._cli import run_cli

    code = run_cli(
        seeds=seeds,
        first=first,
        seed=seed,
        messages=messages,
        trace=trace,
        echo=typer.echo,
        regions=regions,
        wan_rtt_ms=wan_rtt_ms,
        faults=faults,
    )
    raise typer.Exit(code)


def _register_bench() -> None:
    from chatcore.bench import app as bench_app

    app.add_typer(bench_app, name="bench")


_register_bench()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
