"""The server's web-facing rules, alone: origins, loopback hosts, dev names, log scrubbing."""

from __future__ import annotations

import logging

import pytest

from chatcore.errors import InvalidRequest
from chatcore.server import ChatServer, ServerSettings
from chatcore.server.policy import dev_user_name, is_loopback_host, origin_allowed
from chatcore.server.run import build_server
from chatcore.server.sockets import TokenScrubber


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "ok"),
    [
        (None, "chat.example.com", None, True),  # not a browser
        ("https://chat.example.com", "chat.example.com", None, True),
        ("https://chat.example.com", "chat.example.com:443", None, True),
        ("http://chat.example.com", "chat.example.com", None, True),
        ("http://127.0.0.1:8000", "127.0.0.1:8000", None, True),
        ("http://[::1]:8000", "[::1]:8000", None, True),
        ("http://127.0.0.1:8001", "127.0.0.1:8000", None, False),
        ("https://chat.example.com:8443", "chat.example.com", None, False),
        ("https://chat.example.com.evil.com", "chat.example.com", None, False),
        ("https://evil.com", "chat.example.com", None, False),
        ("null", "chat.example.com", None, False),
        ("ftp://chat.example.com", "chat.example.com", None, False),
        ("https://chat.example.com/path", "chat.example.com", None, False),
        ("https://evil.com", None, None, False),
        ("https://app.example.com", "chat.example.com", ["https://app.example.com"], True),
        ("https://app.example.com.evil.com", "x", ["https://app.example.com"], False),
        ("https://evil.app.example.com", "x", ["https://app.example.com"], False),
        ("http://app.example.com", "x", ["https://app.example.com"], False),
        ("https://anything.example", "x", ["*"], True),
    ],
)
def test_origin_policy(
    origin: str | None, host: str | None, allowed: list[str] | None, ok: bool
) -> None:
    assert origin_allowed(origin, host, allowed) is ok


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("LocalHost:8000", True),
        ("127.0.0.1", True),
        ("127.0.0.1:1", True),
        ("[::1]", True),
        ("[::1]:8000", True),
        (None, False),
        ("", False),
        ("evil.com", False),
        ("localhost.evil.com", False),
        ("127.0.0.1.nip.io", False),
        ("127.0.0.2", False),
        ("localhost:80:80", False),
        ("[::2]:80", False),
        ("0.0.0.0:8000", False),
    ],
)
def test_loopback_hosts(host: str | None, ok: bool) -> None:
    assert is_loopback_host(host) is ok


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("alice", "alice"),
        ("  bob  ", "bob"),
        ("a.b_c-d@e", "a.b_c-d@e"),
        ("x" * 64, "x" * 64),
        ("x" * 65, None),
        ("", None),
        (" ", None),
        ("-alice", None),
        ("alice bob", None),
        ("ålice", None),
        ("a/b", None),
        (None, None),
        (5, None),
        (["alice"], None),
    ],
)
def test_dev_user_names(value: object, name: str | None) -> None:
    assert dev_user_name(value) == name


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/ws?token=abc.def", "/ws?token=***"),
        ("/ws?x=1&access_token=abc&y=2", "/ws?x=1&access_token=***&y=2"),
        ("/a?JWT=abc", "/a?JWT=***"),
        ("/a?api_key=abc&authorization=Bearer%20x", "/a?api_key=***&authorization=***"),
        ("/a?page=2&q=token", "/a?page=2&q=token"),
        ("/a", "/a"),
    ],
)
def test_token_scrubber(path: str, shown: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"', ("1.2.3.4", "GET", path), None
    )
    assert TokenScrubber().filter(record)
    assert record.getMessage() == f'1.2.3.4 - "GET {shown}"'


def test_serve_pings_outlast_the_send_timeout() -> None:
    settings = ServerSettings(data_dir=None, dev=True)
    config = build_server(settings, gc_tuning=False).config
    assert config.ws_ping_interval == settings.ws_ping_interval_s == 30
    assert config.ws_ping_timeout == settings.ws_ping_timeout_s == 60
    assert settings.ws_ping_timeout_s > settings.send_timeout_s


@pytest.mark.parametrize(
    "field",
    [
        {"send_timeout_s": 0},
        {"header_timeout_s": -1.0},
        {"drain_timeout_s": float("nan")},
        {"max_connections_per_user": 0},
        {"connect_rate_per_s": 0},
        {"connect_burst": -1},
        {"max_connections_per_user": -2},
    ],
)
def test_limits_out_of_range_are_refused(field: dict[str, float]) -> None:
    with pytest.raises(InvalidRequest, match=next(iter(field))):
        ChatServer(ServerSettings(data_dir=None, dev=True, **field))  # type: ignore[arg-type]
