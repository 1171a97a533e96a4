"""Local stand-ins for the push services: real HTTP servers that check requests as the
services do (signatures, JWTs, headers, body shapes; Web Push payloads decrypted) and
record what they accepted."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import anyio
import http_ece
import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatcore.errors import Unauthorized
from chatcore.push import PushTarget, WebPushKeys, verify_webhook
from chatcore.push.fcm import FCM_SCOPE, ServiceAccount


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 (HTTP/1.1, and HTTP/2 with prior knowledge); yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections queue from now on: no need to wait for the server
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = 0.1
    config.accesslog = config.errorlog = None
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop.set()


def refuse(status: int, **body: Any) -> JSONResponse:
    return JSONResponse(body, status_code=status)


# --- the webhook receiver -------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """Verifies each request with ``verify_webhook``, as a receiver should; 401 if forged."""

    secret: str
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    arrived: anyio.Event = field(default_factory=anyio.Event)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                verify_webhook(self.secret, request.headers, body, now_s=time.time())
            except Unauthorized as exc:
                self.refused += 1
                return refuse(401, error=exc.message)
            self.received.extend(msgspec.json.decode(body)["notifications"])
            self.arrived.set()
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


# --- Web Push ------------------------------------------------------------------------


@dataclass
class Browser:
    """One browser's subscription: its ECDH key pair and auth secret (RFC 8291)."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def keys(self) -> WebPushKeys:
        point = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return WebPushKeys(p256dh=b64url(point), auth=b64url(self.auth))


@dataclass
class PushService:
    """A Web Push service: checks VAPID (RFC 8292) and decrypts the payload (RFC 8291)."""

    application_server_key: str  # what the browsers subscribed with
    browsers: dict[str, Browser] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    origin: str = ""

    def subscribe(self, user: str, device: str, name: str) -> PushTarget:
        browser = self.browsers[name] = Browser()
        return PushTarget(user, device, "webpush", f"{self.origin}/push/{name}", browser.keys())

    def app(self) -> Starlette:
        async def push(request: Request) -> Response:
            name = request.path_params["name"]
            body = await request.body()
            try:
                self._check_vapid(request.headers.get("authorization", ""))
            except (ValueError, jwt.PyJWTError) as exc:
                self.errors.append(f"vapid: {exc}")
                return refuse(401, error=str(exc))
            if name in self.gone or name not in self.browsers:
                return Response(status_code=410)
            if request.headers.get("content-encoding") != "aes128gcm":
                return refuse(415, error="aes128gcm only")
            if "ttl" not in request.headers:
                return refuse(400, error="TTL is required")
            if len(body) > 4096:
                return refuse(413, error="payload too large")
            browser = self.browsers[name]
            plain = http_ece.decrypt(
                body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
            )
            self.received.append((name, msgspec.json.decode(plain), dict(request.headers)))
            return Response(status_code=201, headers={"location": f"/m/{len(self.received)}"})

        return Starlette(routes=[Route("/push/{name}", push, methods=["POST"])])

    def _check_vapid(self, header: str) -> None:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError(f"not a vapid authorization: {header[:20]!r}")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        if fields["k"] != self.application_server_key:
            raise ValueError("k is not the key the subscription was made with")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        claims = jwt.decode(
            fields["t"],
            public,
            algorithms=["ES256"],
            audience=self.origin,
            options={"require": ["exp", "aud", "sub"]},
        )
        if claims["exp"] > time.time() + 86400:
            raise ValueError("exp more than 24 hours ahead")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise ValueError("sub is no contact")


# --- FCM -----------------------------------------------------------------------------


@dataclass
class Fcm:
    """The OAuth2 token endpoint and the FCM v1 send endpoint of one project."""

    project_id: str = "demo-project"
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    gone: set[str] = field(default_factory=set)
    received: list[dict[str, Any]] = field(default_factory=list)
    tokens_issued: int = 0
    errors: list[str] = field(default_factory=list)
    origin: str = ""

    def account(self) -> ServiceAccount:
        return ServiceAccount(
            project_id=self.project_id,
            client_email="push@demo-project.iam.gserviceaccount.com",
            private_key=pem(self.key),
            private_key_id="key-1",
            token_uri=f"{self.origin}/token",
        )

    def app(self) -> Starlette:
        async def token(request: Request) -> Response:
            form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                return refuse(400, error="unsupported_grant_type")
            try:
                assertion = str(form["assertion"])
                if jwt.get_unverified_header(assertion).get("kid") != "key-1":
                    raise jwt.InvalidTokenError("kid is not the account's key id")
                claims = jwt.decode(
                    assertion,
                    self.key.public_key(),
                    algorithms=["RS256"],
                    audience=f"{self.origin}/token",
                    issuer=self.account().client_email,
                    options={"require": ["iat", "exp", "iss", "aud"]},
                )
                if claims.get("scope") != FCM_SCOPE or claims["exp"] - claims["iat"] > 3600:
                    raise jwt.InvalidTokenError("wrong scope or lifetime")
            except (KeyError, jwt.PyJWTError) as exc:
                self.errors.append(f"assertion: {exc}")
                return refuse(400, error="invalid_grant")
            self.tokens_issued += 1
            return JSONResponse(
                {
                    "access_token": f"ya29.{self.tokens_issued}",
                    "expires_in": 3599,
                    "token_type": "Bearer",
                }
            )

        async def send(request: Request) -> Response:
            if request.path_params["project"] != self.project_id:
                return refuse(403, error={"code": 403, "status": "PERMISSION_DENIED"})
            if request.headers.get("authorization") != f"Bearer ya29.{self.tokens_issued}":
                return refuse(401, error={"code": 401, "status": "UNAUTHENTICATED"})
            message = msgspec.json.decode(await request.body())["message"]
            data = message.get("data", {})
            if not isinstance(message.get("token"), str) or not all(
                isinstance(v, str) for v in data.values()
            ):
                return refuse(400, error={"code": 400, "status": "INVALID_ARGUMENT"})
            if message["token"] in self.gone:
                return refuse(
                    404,
                    error={
                        "code": 404,
                        "message": "Requested entity was not found.",
                        "status": "NOT_FOUND",
                        "details": [
                            {
                                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                "errorCode": "UNREGISTERED",
                            }
                        ],
                    },
                )
            self.received.append(message)
            return JSONResponse(
                {"name": f"projects/{self.project_id}/messages/{len(self.received)}"}
            )

        return Starlette(
            routes=[
                Route("/token", token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", send, methods=["POST"]),
            ]
        )


# --- APNs ----------------------------------------------------------------------------


@dataclass
class Apns:
    """APNs over HTTP/2 with token authentication."""

    team_id: str = "TEAM123456"
    key_id: str = "KEY1234567"
    topic: str = "com.example.chat"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    unregistered: set[str] = field(default_factory=set)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    http_versions: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def push(request: Request) -> Response:
            body = await request.body()  # first: hypercorn's h2 trips on data after an answer
            self.http_versions.append(request.scope["http_version"])
            if request.scope["http_version"] != "2":
                return refuse(505, reason="HTTP/2 only")
            token = request.path_params["token"]
            scheme, _, bearer = request.headers.get("authorization", "").partition(" ")
            try:
                if scheme != "bearer":
                    raise jwt.InvalidTokenError("no bearer token")
                header = jwt.get_unverified_header(bearer)
                if header.get("kid") != self.key_id or header.get("alg") != "ES256":
                    raise jwt.InvalidTokenError("wrong kid or alg")
                claims = jwt.decode(
                    bearer,
                    self.key.public_key(),
                    algorithms=["ES256"],
                    issuer=self.team_id,
                    options={"require": ["iss", "iat"]},
                )
                if not time.time() - 3600 < claims["iat"] <= time.time() + 60:
                    return refuse(403, reason="ExpiredProviderToken")
            except jwt.PyJWTError:
                return refuse(403, reason="InvalidProviderToken")
            if request.headers.get("apns-topic") != self.topic:
                return refuse(400, reason="TopicDisallowed")
            if request.headers.get("apns-push-type") != "alert":
                return refuse(400, reason="InvalidPushType")
            if request.headers.get("apns-priority") not in ("5", "10"):
                return refuse(400, reason="BadPriority")
            if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
                return refuse(400, reason="BadDeviceToken")
            if token in self.unregistered:
                return refuse(410, reason="Unregistered", timestamp=int(time.time() * 1000))
            if len(body) > 4096:
                return refuse(413, reason="PayloadTooLarge")
            payload = msgspec.json.decode(body)
            if not isinstance(payload.get("aps", {}).get("alert"), dict):
                return refuse(400, reason="PayloadEmpty")
            self.received.append((token, payload, dict(request.headers)))
            return Response(status_code=200, headers={"apns-id": f"id-{len(self.received)}"})

        return Starlette(routes=[Route("/3/device/{token}", push, methods=["POST"])])
