"""Push settings of ``chatcore serve``, ``gateway`` and ``worker``: the ``[push]`` table.

::

    # chatcore.toml
    [push]
    webhook_url = "https://hooks.example.com/chat"      # and CHATCORE_PUSH_WEBHOOK_SECRET
    vapid_private_key_file = "vapid.pem"                # Web Push (browsers)
    vapid_subject = "mailto:ops@example.com"
    fcm_service_account_file = "service-account.json"   # Android (FCM HTTP v1)
    apns_key_file = "AuthKey_KEY1234567.p8"             # iOS (APNs, token auth)
    apns_key_id = "KEY1234567"
    apns_team_id = "TEAM123456"
    apns_topic = "com.example.chat"

Every field can be set by the environment too, which wins: ``CHATCORE_PUSH_`` and the
field's name in capitals (``CHATCORE_PUSH_WEBHOOK_SECRET``). File paths are taken
relative to the TOML file's folder. With no service configured, the notifier is the
log line of :class:`~chatcore.offline.LoggingPushNotifier`. Nothing here imports the
``push`` extra until :meth:`PushConfig.notifier` builds a sender.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import msgspec

from chatcore.errors import InvalidRequest
from chatcore.offline._base import PushNotifier
from chatcore.push._base import PushSender, PushTokenStore
from chatcore.push.group import PushNotifierGroup, close_all
from chatcore.push.targets import WEBPUSH_SERVICES, TargetRules

__all__ = ["PushConfig"]

_FILES = (
    "webhook_secret_file",
    "vapid_private_key_file",
    "fcm_service_account_file",
    "apns_key_file",
)


@dataclass(frozen=True, kw_only=True)
class PushConfig:
    """Which push services reach offline devices, their credentials, and what devices
    may register. Load it with :meth:`load`; build the notifier with :meth:`notifier`."""

    webhook_url: str | None = None
    """POST signed notifications to this URL (your own service); None: no webhook."""
    webhook_secret: str | None = None
    """The webhook's HMAC secret, 16 bytes or more (best set by the environment)."""
    webhook_secret_file: str | None = None
    """A file holding the webhook's secret, instead of ``webhook_secret``."""
    vapid_private_key_file: str | None = None
    """The VAPID P-256 private key (PEM, or base64url raw) of Web Push; None: no Web Push."""
    vapid_subject: str | None = None
    """The ``mailto:`` or ``https:`` contact sent to Web Push services (needed with VAPID)."""
    fcm_service_account_file: str | None = None
    """The Firebase service-account JSON key file; None: no FCM."""
    fcm_url: str = "https://fcm.googleapis.com"
    """Where FCM's HTTP v1 API is."""
    apns_key_file: str | None = None
    """The APNs ``.p8`` signing key; None: no APNs (then the other ``apns_*`` stay unset)."""
    apns_key_id: str | None = None
    """The ten-character id of the APNs key."""
    apns_team_id: str | None = None
    """The Apple developer team id (the token's issuer)."""
    apns_topic: str | None = None
    """The app's bundle id."""
    apns_url: str = "https://api.push.apple.com"
    """APNs itself; ``https://api.sandbox.push.apple.com`` for development builds."""
    webpush_hosts: tuple[str, ...] = WEBPUSH_SERVICES
    """Hosts a Web Push endpoint may name (exact or ``*.suffix``; ``["*"]``: any)."""
    allow_http_endpoints: bool = False
    """Accept ``http://`` Web Push endpoints (a local push service in tests only)."""
    allow_private_endpoints: bool = False
    """Accept loopback and private addresses as Web Push endpoints (tests only)."""
    max_devices_per_user: int = 10
    """Push targets kept per user: one more forgets the one registered longest ago."""
    max_concurrency: int = 32
    """Pushes sent at once."""
    timeout_s: float = 10.0
    """Per request to a push service; a push (access token and send) gets twice this."""

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.max_devices_per_user < 1:
            raise InvalidRequest("max_concurrency and max_devices_per_user must be at least 1")
        if not self.timeout_s > 0:
            raise InvalidRequest(f"timeout_s must be positive, got {self.timeout_s}")
        if self.webhook_url and not (self.webhook_secret or self.webhook_secret_file):
            raise InvalidRequest("webhook_url needs webhook_secret or webhook_secret_file")
        if self.vapid_private_key_file and not self.vapid_subject:
            raise InvalidRequest("vapid_private_key_file needs vapid_subject (mailto: or https:)")
        apns = (self.apns_key_file, self.apns_key_id, self.apns_team_id, self.apns_topic)
        if any(apns) and not all(apns):
            raise InvalidRequest("APNs needs apns_key_file, apns_key_id, apns_team_id, apns_topic")

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, env: Mapping[str, str] | None = None
    ) -> PushConfig:
        """Read ``path``'s ``[push]`` table (if a path is given), then the environment.

        Raises InvalidRequest for an unreadable file, an unknown key or a bad value.
        """
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        base = Path(".")
        if path is not None:
            try:
                values = dict(tomllib.loads(Path(path).read_text()).get("push", {}))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise InvalidRequest(f"cannot read config {path}: {exc}") from exc
            base = Path(path).parent
            unknown = set(values) - {f.name for f in fields(cls)}
            if unknown:
                raise InvalidRequest(f"unknown settings in {path} [push]: {sorted(unknown)}")
        for name in (f.name for f in fields(cls)):
            value = env.get(f"CHATCORE_PUSH_{name.upper()}")
            if value is not None:
                values[name] = value.split(",") if name == "webpush_hosts" else value
        for name in _FILES:
            if isinstance(values.get(name), str):
                values[name] = str(base / values[name])
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"bad [push] setting: {exc}") from exc

    @property
    def configured(self) -> bool:
        """Whether any push service is set (else pushes are log lines)."""
        return bool(
            self.webhook_url
            or self.vapid_private_key_file
            or self.fcm_service_account_file
            or self.apns_key_file
        )

    def rules(self) -> TargetRules:
        """What a device may register as push target."""
        return TargetRules(
            max_devices_per_user=self.max_devices_per_user,
            allow_http_endpoints=self.allow_http_endpoints,
            webpush_hosts=self.webpush_hosts,
            allow_private_endpoints=self.allow_private_endpoints,
        )

    def vapid_public_key(self) -> str | None:
        """The ``applicationServerKey`` browsers subscribe with (None without Web Push).

        Raises InvalidRequest for an unreadable or bad key file.
        """
        if not self.vapid_private_key_file:
            return None
        from chatcore.push.webpush import application_server_key

        return application_server_key(_read("vapid_private_key_file", self.vapid_private_key_file))

    async def notifier(self, tokens: PushTokenStore) -> PushNotifier:
        """The notifier these settings describe, its device targets read from ``tokens``.

        A :class:`~chatcore.push.DevicePushNotifier` over the configured services, a
        webhook, both (in a :class:`~chatcore.push.group.PushNotifierGroup`), or the log
        line when none is configured. Raises InvalidRequest for an unreadable
        credentials file or a bad key (what was built so far is closed), ImportError
        without the ``push`` extra.
        """
        if not self.configured:
            from chatcore.offline.log import LoggingPushNotifier

            return LoggingPushNotifier()
        from chatcore.push.notifier import DevicePushNotifier

        built: list[Any] = []
        try:
            senders = self._senders(built)
            notifiers: list[PushNotifier] = []
            if senders:
                device = DevicePushNotifier(
                    tokens,
                    senders,
                    max_concurrency=self.max_concurrency,
                    timeout_s=2 * self.timeout_s,
                )
                built[:] = [device]  # it closes the senders
                notifiers.append(device)
            if self.webhook_url:
                notifiers.append(self._webhook(built))
        except BaseException:
            await close_all(built)
            raise
        return notifiers[0] if len(notifiers) == 1 else PushNotifierGroup(notifiers)

    def _senders(self, built: list[Any]) -> list[PushSender]:
        senders: list[PushSender] = []
        if self.vapid_private_key_file:
            from chatcore.push.webpush import WebPushSender

            key = _read("vapid_private_key_file", self.vapid_private_key_file)
            subject = self.vapid_subject or ""
            senders.append(
                WebPushSender(
                    vapid_private_key=key, vapid_subject=subject, timeout_s=self.timeout_s
                )
            )
            built.append(senders[-1])
        if self.fcm_service_account_file:
            from chatcore.push.fcm import FcmSender, ServiceAccount

            account = ServiceAccount.from_json(
                _read("fcm_service_account_file", self.fcm_service_account_file)
            )
            senders.append(FcmSender(account, base_url=self.fcm_url, timeout_s=self.timeout_s))
            built.append(senders[-1])
        if self.apns_key_file:
            from chatcore.push.apns import ApnsSender

            senders.append(
                ApnsSender(
                    key=_read("apns_key_file", self.apns_key_file),
                    key_id=self.apns_key_id or "",
                    team_id=self.apns_team_id or "",
                    topic=self.apns_topic or "",
                    base_url=self.apns_url,
                    timeout_s=self.timeout_s,
                )
            )
            built.append(senders[-1])
        return senders

    def _webhook(self, built: list[Any]) -> PushNotifier:
        from chatcore.push.webhook import WebhookPushNotifier

        secret = self.webhook_secret
        if self.webhook_secret_file:
            secret = _read("webhook_secret_file", self.webhook_secret_file).strip()
        webhook = WebhookPushNotifier(
            self.webhook_url or "", secret=secret or "", timeout_s=self.timeout_s
        )
        built.append(webhook)
        return webhook


def _read(field: str, path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {field} {path}: {exc}") from exc
