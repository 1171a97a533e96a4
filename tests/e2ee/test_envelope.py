"""The shape rule of encrypted bodies: what the server accepts without any key."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.e2ee import decode_envelope
from chatcore.errors import InvalidRequest
from tests.envelopes import shaped_envelope


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def body_of(obj: Any) -> str:
    return b64(json.dumps(obj).encode())


def good() -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(shaped_envelope("x") + "=="))  # type: ignore[no-any-return]


def test_a_shaped_envelope_decodes() -> None:
    env = decode_envelope(shaped_envelope("x"))
    assert env.v == 1 and [(k.user, k.device) for k in env.keys] == [("bob", "d1")]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda e: e.update(v=2), "v1"),
        (lambda e: e.update(epk=b64(b"\x01" * 31)), "epk"),
        (lambda e: e.update(iv=b64(b"\x01" * 16)), "iv"),
        (lambda e: e.update(ct=b64(b"\x01" * 15)), "tag"),
        (lambda e: e.update(ct="not base64!"), "base64url"),
        (lambda e: e.update(keys=[]), "v1"),
        (lambda e: e["keys"][0].update(wk=b64(b"\x01" * 40)), "wk"),
        (lambda e: e["keys"][0].update(version=0), "v1"),
        (lambda e: e["keys"].append(dict(e["keys"][0])), "twice"),
        (lambda e: e.update(extra=1), "v1"),
        (lambda e: e.pop("device"), "v1"),
    ],
)
def test_malformed_envelopes_are_refused(change: Any, why: str) -> None:
    env = good()
    change(env)
    with pytest.raises(InvalidRequest, match=why):
        decode_envelope(body_of(env))


@pytest.mark.parametrize(
    "body", ["", "hello world", "c2VjcmV0", "c2VjcmV0IHBsYW4=", b64(b"[1,2]"), b64(b"\xff\xfe")]
)
def test_bodies_that_are_no_envelope_are_refused(body: str) -> None:
    with pytest.raises(InvalidRequest):
        decode_envelope(body)


@given(st.text(max_size=300))
def test_nothing_but_invalid_request_escapes(body: str) -> None:
    with contextlib.suppress(InvalidRequest):
        decode_envelope(body)
