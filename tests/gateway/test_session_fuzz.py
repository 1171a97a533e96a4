"""Fuzzing the gateway session: whatever a client sends, only clean actions come out.

Frames are arbitrary bytes and text, arbitrary JSON and MessagePack values, and the
protocol's client examples with one field replaced, before and after hello, on both
subprotocols. The session must never raise; each frame gets actions of the four
kinds, error frames carry a code of the protocol, and a closed session stays closed.
"""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcore.errors import ErrorCode, Unauthorized
from chatcore.gateway.session import (
    Close,
    GatewaySession,
    Handle,
    Opened,
    Reply,
    SessionLimits,
    SessionState,
)
from chatcore.protocol import SUBPROTOCOLS, ErrorFrame, codec_for
from tests.protocol.protocol_examples import CLIENT_EXAMPLES

CODES = set(typing.get_args(ErrorCode))
HELLO = {"type": "hello", "id": 1, "token": "ok:alice", "device": "d"}


def verify(token: str) -> str:
    if not token.startswith("ok:") or len(token) < 4:
        raise Unauthorized("bad token")
    return token[3:]


_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64) | st.floats() | st.text(max_size=20)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["type", "id", "chat", "seq", "members", "kind", "cursors", "users", "limit", "token", "body"]
)


@st.composite
def _mutated_example(draw: st.DrawFn) -> dict[str, Any]:
    example: dict[str, Any] = json.loads(draw(st.sampled_from(CLIENT_EXAMPLES)))
    if draw(st.booleans()):
        example[draw(_keys)] = draw(_values)
    return example


def _encode(subprotocol: str, value: Any) -> bytes | str | None:
    try:
        if subprotocol.endswith("json"):
            return json.dumps(value)
        return msgspec.msgpack.encode(value)
    except (OverflowError, ValueError, TypeError):
        return None  # not representable on this codec


@st.composite
def _frame(draw: st.DrawFn, subprotocol: str) -> bytes | str:
    kind = draw(st.sampled_from(["bytes", "text", "value", "example"]))
    if kind == "bytes":
        return draw(st.binary(max_size=120))
    if kind == "text":
        return draw(st.text(max_size=120))
    value = draw(_values) if kind == "value" else draw(_mutated_example())
    encoded = _encode(subprotocol, value)
    return draw(st.binary(max_size=20)) if encoded is None else encoded


@st.composite
def _conversation(draw: st.DrawFn) -> tuple[str, bool, list[bytes | str]]:
    subprotocol = draw(st.sampled_from(sorted(SUBPROTOCOLS)))
    said_hello = draw(st.booleans())
    frames = draw(st.lists(_frame(subprotocol), min_size=1, max_size=25))
    return subprotocol, said_hello, frames


@settings(max_examples=400, deadline=None)
@given(conversation=_conversation())
def test_any_frames_give_only_clean_actions(
    conversation: tuple[str, bool, list[bytes | str]],
) -> None:
    subprotocol, said_hello, frames = conversation
    session = GatewaySession(
        codec_for(subprotocol),
        verify,
        now=0.0,
        limits=SessionLimits(max_bad_frames=5, frames_per_s=5, frame_burst=10),
    )
    if said_hello:
        hello = _encode(subprotocol, HELLO)
        assert hello is not None
        assert isinstance(session.receive(hello, now=0.0)[0], Opened)
    for i, data in enumerate(frames):
        was_closed = session.state is SessionState.CLOSED
        actions = session.receive(data, now=i * 0.01)
        if was_closed:
            assert actions == []
        for action in actions:
            assert isinstance(action, Reply | Close | Opened | Handle)
            if isinstance(action, Reply) and isinstance(action.frame, ErrorFrame):
                assert action.frame.code in CODES and action.frame.message
        closes = [a for a in actions if isinstance(a, Close)]
        assert len(closes) <= 1 and (not closes or actions[-1] is closes[0])
        if closes:
            assert session.state is SessionState.CLOSED
        assert session.tick(now=i * 0.01) == []  # nothing is due within the hello deadline
