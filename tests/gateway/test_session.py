"""The sans-IO gateway session: frames in, actions out, time passed in."""

from __future__ import annotations

import json

import pytest

from chatcore.errors import Unauthorized
from chatcore.gateway.session import (
    Close,
    CloseCode,
    GatewaySession,
    Handle,
    Identity,
    Opened,
    Reply,
    SessionLimits,
    SessionState,
)
from chatcore.protocol import ErrorFrame, Pong, Send, Welcome, codec_for
from chatcore.ratelimit import RateLimiter


def verify(token: str) -> str:
    if not token.startswith("ok:"):
        raise Unauthorized("bad token")
    return token[3:]


def session(**kw: object) -> GatewaySession:
    return GatewaySession(codec_for("chatcore.v1.json"), verify, now=0.0, **kw)  # type: ignore[arg-type]


def frame(**fields: object) -> str:
    return json.dumps(fields)


HELLO = frame(type="hello", id=1, token="ok:alice", device="phone")
SEND = frame(type="send", id=2, chat="c", client_msg_id="m", kind="text", body="hi")


def test_hello_opens_then_welcomes() -> None:
    s = session()
    actions = s.receive(HELLO, now=0.1)
    assert actions == [
        Opened("alice", "phone", 1),
        Reply(Welcome(id=1, user="alice", device="phone", heartbeat_s=30)),
    ]
    assert s.state is SessionState.OPEN and s.user == "alice"


def test_requests_go_to_the_pipeline_and_ping_is_answered_here() -> None:
    s = session()
    s.receive(HELLO, now=0)
    (handle,) = s.receive(SEND, now=0)
    assert isinstance(handle, Handle) and isinstance(handle.frame, Send)
    assert s.receive(frame(type="ping", id=3), now=0) == [Reply(Pong(id=3))]


@pytest.mark.parametrize("first", [frame(type="ping", id=1), SEND, "{bad json"])
def test_anything_before_hello_closes_4001(first: str) -> None:
    s = session()
    actions = s.receive(first, now=0)
    assert isinstance(actions[0], Reply) and isinstance(actions[0].frame, ErrorFrame)
    assert actions[-1] == Close(CloseCode.UNAUTHORIZED, "hello required")
    assert s.state is SessionState.CLOSED
    assert s.receive(HELLO, now=0) == []


def test_bad_token_closes_4001() -> None:
    s = session()
    actions = s.receive(frame(type="hello", id=1, token="forged", device="d"), now=0)
    assert isinstance(actions[0], Reply)
    assert isinstance(actions[0].frame, ErrorFrame) and actions[0].frame.code == "unauthorized"
    assert isinstance(actions[1], Close) and actions[1].code == CloseCode.UNAUTHORIZED


def test_hello_deadline() -> None:
    s = session(limits=SessionLimits(hello_timeout_s=10))
    assert s.tick(now=9.9) == []
    assert s.tick(now=10.0) == [Close(CloseCode.HELLO_TIMEOUT, "no hello in time")]
    opened = session()
    opened.receive(HELLO, now=1)
    assert opened.tick(now=100) == []


def test_bad_frames_get_errors_until_abuse_closes_1008() -> None:
    s = session(limits=SessionLimits(max_bad_frames=3))
    s.receive(HELLO, now=0)
    for _ in range(3):
        (reply,) = s.receive("{nope", now=0)
        assert isinstance(reply, Reply) and isinstance(reply.frame, ErrorFrame)
    actions = s.receive("{nope", now=0)
    assert actions[-1] == Close(CloseCode.POLICY_VIOLATION, "too many bad frames")


def test_sends_are_rate_limited_per_user_across_sessions() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)
    a, b = session(send_limiter=limiter), session(send_limiter=limiter)
    a.receive(HELLO, now=0)
    b.receive(HELLO, now=0)
    assert isinstance(a.receive(SEND, now=0)[0], Handle)
    assert isinstance(b.receive(SEND, now=0)[0], Handle)
    (refused,) = a.receive(SEND, now=0)
    assert isinstance(refused, Reply) and isinstance(refused.frame, ErrorFrame)
    assert refused.frame.code == "rate_limited" and refused.frame.retry_after_ms == 1000
    assert isinstance(a.receive(SEND, now=1.0)[0], Handle)


def test_frame_flood_is_limited_per_connection() -> None:
    s = session(limits=SessionLimits(frames_per_s=1, frame_burst=2))
    s.receive(HELLO, now=0)
    ping = frame(type="ping", id=9)
    assert s.receive(ping, now=0) == [Reply(Pong(id=9))]
    assert s.receive(ping, now=0) == [Reply(Pong(id=9))]
    (limited,) = s.receive(ping, now=0)
    assert isinstance(limited, Reply) and isinstance(limited.frame, ErrorFrame)
    assert limited.frame.code == "rate_limited" and limited.frame.id == 9


def test_second_hello_is_invalid() -> None:
    s = session()
    s.receive(HELLO, now=0)
    (reply,) = s.receive(HELLO, now=0)
    assert isinstance(reply, Reply) and isinstance(reply.frame, ErrorFrame)
    assert reply.frame.code == "invalid"


def test_a_hello_timer_firing_early_is_re_armed() -> None:
    """uvloop may run a timer up to a millisecond early: nothing is due yet, and the
    session still names the same deadline, so the shell sleeps again."""
    s = session(limits=SessionLimits(hello_timeout_s=10))
    assert s.deadline() == 10.0
    early = 10.0 - 0.0004
    assert s.tick(now=early) == []
    assert s.deadline() == 10.0
    assert s.tick(now=10.0) == [Close(CloseCode.HELLO_TIMEOUT, "no hello in time")]
    assert s.deadline() is None


def test_no_deadline_once_open_without_expiry() -> None:
    s = session()
    s.receive(HELLO, now=1)
    assert s.deadline() is None


def test_an_expiring_token_closes_the_session_4001_when_it_expires() -> None:
    s = GatewaySession(
        codec_for("chatcore.v1.json"), lambda _: Identity("alice", valid_for_s=60), now=0.0
    )
    s.receive(HELLO, now=5)
    assert s.deadline() == 65
    assert s.tick(now=64.9) == []
    assert s.tick(now=65) == [Close(CloseCode.UNAUTHORIZED, "token expired")]
    assert s.state is SessionState.CLOSED and s.deadline() is None
