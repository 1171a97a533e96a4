"""`chatcore serve --config FILE` with a ``[push]`` table: an offline member's push
reaches a local webhook receiver that verifies the signature, and the page learns
the VAPID public key from ``/api/push``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from tests.client.harness import device
from tests.e2e.test_cli_serve import dev_token, free_port
from tests.push.services import WebhookReceiver, serving
from tests.push.test_webpush import VAPID_PUBLIC, VAPID_RAW

pytestmark = pytest.mark.anyio

SECRET = "a-webhook-secret-of-32-bytes-ok!"


@contextmanager
def serve(args: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCORE_")}
    env["CHATCORE_PUSH_WEBHOOK_SECRET"] = SECRET
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "chatcore.cli", "serve", "--dev", "--port", str(port),
             "--log-level", "warning", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


async def wait_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while True:
            try:
                answer = await http.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(await anyio.Path(log).read_text())
            await anyio.sleep(0.1)


async def test_serve_with_a_push_config_reaches_the_webhook(tmp_path: Path) -> None:
    receiver = WebhookReceiver(SECRET)
    (tmp_path / "vapid.key").write_text(VAPID_RAW)
    async with serving(receiver.app()) as url:
        config = tmp_path / "chatcore.toml"
        config.write_text(
            f'[push]\nwebhook_url = "{url}/hook"\nvapid_private_key_file = "vapid.key"\n'
            'vapid_subject = "mailto:ops@example.com"\n'
        )
        port, log = free_port(), tmp_path / "serve.log"
        args = ["--data", str(tmp_path / "data"), "--config", str(config)]
        with serve(args, port, log) as process:
            await wait_healthy(port, process, log)
            async with httpx.AsyncClient() as http:
                settings = (await http.get(f"http://127.0.0.1:{port}/api/push")).json()
            assert settings == {"vapid_public_key": VAPID_PUBLIC}
            async with device(f"ws://127.0.0.1:{port}/ws", dev_token(port, "alice")) as alice:
                chat = (await alice.client.create_direct("bob")).chat
                await alice.client.send(chat, "are you there?")
                with anyio.fail_after(15):
                    await receiver.arrived.wait()
        assert "Traceback" not in log.read_text()
    (note,) = receiver.received
    assert (note["user"], note["chat_id"], note["count"]) == ("bob", chat, 1)
    assert note["body"] == "are you there?" and receiver.refused == 0


@pytest.mark.parametrize(
    "command",
    [["serve", "--memory"], ["gateway"], ["worker"]],
    ids=["serve", "gateway", "worker"],
)
def test_a_bad_push_config_stops_the_command_with_a_clear_error(
    tmp_path: Path, command: list[str]
) -> None:
    config = tmp_path / "chatcore.toml"
    config.write_text('[push]\nwebhook_url = "https://hooks.example/x"\ncolour = "red"\n')
    env = {**os.environ, "CHATCORE_SECRET": "s" * 32}
    done = subprocess.run(
        [sys.executable, "-m", "chatcore.cli", *command, "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "unknown settings" in done.stderr and "colour" in done.stderr
