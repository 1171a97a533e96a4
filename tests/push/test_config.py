"""``PushConfig``: the ``[push]`` table and the environment, and the notifier it builds."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from chatcore.errors import InvalidRequest
from chatcore.offline.log import LoggingPushNotifier
from chatcore.push import (
    WEBPUSH_SERVICES,
    DevicePushNotifier,
    MemoryPushTokenStore,
    PushConfig,
    PushNotifierGroup,
    TargetRules,
)
from chatcore.push.webhook import WebhookPushNotifier
from chatcore.push.webpush import WebPushSender
from tests.push.services import Apns, Fcm, pem
from tests.push.test_webpush import VAPID_PUBLIC, VAPID_RAW

pytestmark = pytest.mark.anyio

SECRET = "s" * 32


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chatcore.toml"
    path.write_text(text)
    return path


def test_defaults_are_log_lines_and_the_browsers_push_services() -> None:
    config = PushConfig.load(env={})
    assert not config.configured
    assert config.rules() == TargetRules()
    assert config.webpush_hosts == WEBPUSH_SERVICES
    assert config.vapid_public_key() is None


def test_the_file_then_the_environment(tmp_path: Path) -> None:
    (tmp_path / "vapid.key").write_text(VAPID_RAW)
    path = write(
        tmp_path,
        '[production]\npartitions = 4\n[push]\nvapid_private_key_file = "vapid.key"\n'
        'vapid_subject = "mailto:ops@example.com"\nwebpush_hosts = ["push.example"]\n'
        "max_devices_per_user = 3\n",
    )
    env = {"CHATCORE_PUSH_MAX_DEVICES_PER_USER": "5", "CHATCORE_PUSH_ALLOW_HTTP_ENDPOINTS": "true"}
    config = PushConfig.load(path, env=env)
    assert config.vapid_private_key_file == str(tmp_path / "vapid.key")  # beside the file
    assert config.vapid_public_key() == VAPID_PUBLIC
    assert config.rules() == TargetRules(
        max_devices_per_user=5, allow_http_endpoints=True, webpush_hosts=("push.example",)
    )


@pytest.mark.parametrize(
    ("table", "env", "error"),
    [
        ("colour = 1", {}, "unknown settings"),
        ('webhook_url = "https://hooks.example/x"', {}, "needs webhook_secret"),
        ('vapid_private_key_file = "k"', {}, "vapid_subject"),
        ('apns_key_file = "k.p8"\napns_key_id = "K"', {}, "APNs needs"),
        ("max_concurrency = 0", {}, "at least 1"),
        ('timeout_s = "soon"', {}, "bad \\[push\\] setting"),
        ("", {"CHATCORE_PUSH_TIMEOUT_S": "-1"}, "positive"),
    ],
)
def test_a_bad_setting_is_named(
    tmp_path: Path, table: str, env: dict[str, str], error: str
) -> None:
    with pytest.raises(InvalidRequest, match=error):
        PushConfig.load(write(tmp_path, f"[push]\n{table}\n"), env=env)


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read config"):
        PushConfig.load(tmp_path / "missing.toml", env={})


async def test_no_service_gives_the_log_notifier() -> None:
    notifier = await PushConfig().notifier(MemoryPushTokenStore())
    assert isinstance(notifier, LoggingPushNotifier)


async def test_every_service_and_a_webhook_make_a_group(tmp_path: Path) -> None:
    fcm, apns = Fcm(origin="http://127.0.0.1:9"), Apns()
    (tmp_path / "vapid.pem").write_text(VAPID_RAW)
    (tmp_path / "sa.json").write_bytes(msgspec.json.encode(fcm.account()))
    (tmp_path / "apns.p8").write_text(pem(apns.key))
    config = PushConfig(
        webhook_url="https://hooks.example/chat",
        webhook_secret=SECRET,
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
        vapid_subject="mailto:ops@example.com",
        fcm_service_account_file=str(tmp_path / "sa.json"),
        apns_key_file=str(tmp_path / "apns.p8"),
        apns_key_id=apns.key_id,
        apns_team_id=apns.team_id,
        apns_topic=apns.topic,
    )
    async with await config.notifier(MemoryPushTokenStore()) as notifier:
        assert isinstance(notifier, PushNotifierGroup)
        device, webhook = notifier.notifiers
        assert isinstance(device, DevicePushNotifier) and isinstance(webhook, WebhookPushNotifier)
        assert sorted(device._senders) == ["apns", "fcm", "webpush"]


async def test_a_later_sender_that_fails_closes_those_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[str] = []
    original = WebPushSender.aclose

    async def aclose(self: WebPushSender) -> None:
        closed.append("webpush")
        await original(self)

    monkeypatch.setattr(WebPushSender, "aclose", aclose)
    (tmp_path / "vapid.pem").write_text(VAPID_RAW)
    (tmp_path / "sa.json").write_text('{"project_id": "p"}')  # no key: refused
    config = PushConfig(
        vapid_private_key_file=str(tmp_path / "vapid.pem"),
        vapid_subject="mailto:ops@example.com",
        fcm_service_account_file=str(tmp_path / "sa.json"),
    )
    with pytest.raises(InvalidRequest, match="service-account"):
        await config.notifier(MemoryPushTokenStore())
    assert closed == ["webpush"]


async def test_a_missing_credentials_file_is_named(tmp_path: Path) -> None:
    config = PushConfig(webhook_url="https://h.example/x", webhook_secret_file="/nonexistent/s")
    with pytest.raises(InvalidRequest, match="webhook_secret_file"):
        await config.notifier(MemoryPushTokenStore())
