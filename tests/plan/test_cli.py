"""``chatcore plan`` on the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from chatcore.cli import app
from chatcore.plan import Target, plan

runner = CliRunner()


def test_plan_prints_the_fleet_for_flags() -> None:
    result = runner.invoke(app, ["plan", "--json", "--set", "mau=2e8", "--set", "devices=1.5"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    expected = plan(Target(mau=2e8, devices=1.5))
    assert [tier["count"] for tier in printed["tiers"]] == [t.count for t in expected.tiers]
    assert printed["binds_first"] == expected.binds_first.name


def test_plan_text_names_the_binding_limit() -> None:
    result = runner.invoke(app, ["plan"])
    assert result.exit_code == 0, result.output
    assert "gateways" in result.output and "bound by connections" in result.output


def test_bad_figures_exit_with_a_usage_error() -> None:
    for args in (["--set", "mau"], ["--set", "mau=-3"], ["--set", "nope=1"]):
        result = runner.invoke(app, ["plan", *args])
        assert result.exit_code == 2, args


def test_the_docs_worked_example_is_what_the_command_prints() -> None:
    from pathlib import Path

    page = (Path(__file__).parents[2] / "docs/capacity.md").read_text()
    block = page.split("$ chatcore plan\n", 1)[1].split("\n```", 1)[0]
    assert block == runner.invoke(app, ["plan"]).output.rstrip("\n")
