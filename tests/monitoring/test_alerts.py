"""The alerting rules, checked and unit-tested by Prometheus's own promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.monitoring.dashboards import MONITORING


def promtool(*args: str) -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail(
            "promtool is missing: `scripts/services install prometheus` installs Debian's "
            "prometheus package, which has it",
            pytrace=False,
        )
    done = subprocess.run(
        [tool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_rules_are_valid() -> None:
    assert "SUCCESS: 4 rules found" in promtool("check", "rules", "alerts.yml")


def test_every_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_alert_has_a_unit_test() -> None:
    rules = (MONITORING / "alerts.yml").read_text()
    tests = (MONITORING / "alerts.test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 4
    for alert in alerts:
        assert f"alertname: {alert}" in tests, alert
