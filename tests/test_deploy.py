"""The deployment examples (systemd units, Kubernetes manifests) run real commands.

Every command line they hold is parsed by the real ``chatcore`` CLI, so a renamed
option breaks this test rather than a deployment; probes name real routes and ports.
"""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml  # type: ignore[import-untyped]  # (no stubs in the lock; only the test reads YAML)

from chatcore.cli import app
from chatcore.config import ProductionConfig

DEPLOY = Path(__file__).parents[1] / "examples" / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
MANIFESTS = list(yaml.safe_load_all((DEPLOY / "k8s" / "chatcore.yaml").read_text()))


def parse_command(argv: list[str]) -> dict[str, Any]:
    """The parameters ``argv`` (``chatcore <command> ...``) gives, parsed as the CLI would."""
    assert Path(argv[0]).name == "chatcore", argv
    group: Any = typer.main.get_command(app)
    command = group.get_command(group.make_context("chatcore", [argv[1]]), argv[1])
    assert command is not None, f"no chatcore command {argv[1]!r}"
    params: dict[str, Any] = command.make_context(argv[1], list(argv[2:])).params
    return params


def test_parse_command_refuses_an_unknown_option() -> None:
    with pytest.raises(typer.exceptions.TyperException, match="No such option"):
        parse_command(["chatcore", "gateway", "--portt", "1"])


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_run_real_commands(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(unit)
    argv = shlex.split(parser["Service"]["ExecStart"].replace("%i", "8000"))
    params = parse_command(argv)
    assert params.get("config") == Path("/etc/chatcore/chatcore.toml")
    assert parser["Service"]["EnvironmentFile"] == "/etc/chatcore/env"


def test_the_example_config_loads() -> None:
    config = ProductionConfig.load(DEPLOY / "systemd" / "chatcore.toml.example", env={})
    assert config.cassandra_replication["class"] == "NetworkTopologyStrategy"


def _containers() -> list[dict[str, Any]]:
    found = []
    for doc in MANIFESTS:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        found += pod.get("containers", [])
    return found


def test_manifests_are_well_formed() -> None:
    kinds = {(doc["apiVersion"], doc["kind"]) for doc in MANIFESTS}
    assert ("apps/v1", "Deployment") in kinds and ("batch/v1", "Job") in kinds
    for doc in MANIFESTS:
        assert doc["metadata"]["name"].startswith("chatcore")


@pytest.mark.parametrize("container", _containers(), ids=lambda c: c["name"])
def test_kubernetes_containers_run_real_commands(container: dict[str, Any]) -> None:
    params = parse_command(container["command"])
    config = params.get("config")
    mounts = [m["mountPath"] for m in container.get("volumeMounts", [])]
    assert config is not None and str(config.parent) in mounts
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if "port" in params:
        assert ports == {"http": params["port"]}
    for probe in ("readinessProbe", "livenessProbe"):
        if probe in container:
            action = container[probe].get("httpGet") or container[probe]["tcpSocket"]
            assert action["port"] in ports


def test_gateways_are_ready_on_healthz() -> None:
    from chatcore.server import ServerSettings, create_app

    app = create_app(ServerSettings(data_dir=None, dev=True))
    paths = {getattr(route, "path", None) for route in app.routes}
    (gateway,) = [c for c in _containers() if c["name"] == "gateway"]
    assert gateway["readinessProbe"]["httpGet"]["path"] in paths
