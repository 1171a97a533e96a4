"""The webhook signature: what ``sign_webhook`` makes and ``verify_webhook`` accepts."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from chatcore.errors import InvalidRequest, Unauthorized
from chatcore.push import SIGNATURE_HEADER, sign_webhook, verify_webhook

SECRET = "s" * 32
BODY = b'{"notifications":[]}'
T = 1_750_000_000


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_webhook(SECRET, BODY, timestamp=T) == f"t={T},v1={expected}"


def test_a_genuine_request_is_accepted_whatever_the_header_case() -> None:
    value = sign_webhook(SECRET, BODY, timestamp=T)
    verify_webhook(SECRET, {SIGNATURE_HEADER.lower(): value}, BODY, now_s=T + 10)
    verify_webhook(SECRET, {SIGNATURE_HEADER.upper(): value}, BODY, now_s=T - 10)


def test_a_rotated_secret_verifies_with_either_signature() -> None:
    old = sign_webhook("o" * 32, BODY, timestamp=T)
    new = sign_webhook(SECRET, BODY, timestamp=T).split(",")[1]
    verify_webhook(SECRET, {SIGNATURE_HEADER: f"{old},{new}"}, BODY, now_s=T)


@pytest.mark.parametrize(
    ("headers", "body", "now"),
    [
        ({}, BODY, T),
        ({SIGNATURE_HEADER: sign_webhook(SECRET, BODY, timestamp=T)}, BODY + b" ", T),
        ({SIGNATURE_HEADER: sign_webhook("x" * 32, BODY, timestamp=T)}, BODY, T),
        ({SIGNATURE_HEADER: sign_webhook(SECRET, BODY, timestamp=T)}, BODY, T + 301),
        ({SIGNATURE_HEADER: sign_webhook(SECRET, BODY, timestamp=T)}, BODY, T - 301),
        ({SIGNATURE_HEADER: "v1=" + "0" * 64}, BODY, T),
        ({SIGNATURE_HEADER: f"t=soon,v1={'0' * 64}"}, BODY, T),
        ({SIGNATURE_HEADER: f"t={T},t={T},v1=00"}, BODY, T),
        ({SIGNATURE_HEADER: f"t={T}"}, BODY, T),
    ],
    ids=[
        "missing",
        "body-changed",
        "wrong-secret",
        "stale",
        "future",
        "no-t",
        "bad-t",
        "two-t",
        "no-v1",
    ],
)
def test_a_forged_or_stale_request_is_refused(
    headers: dict[str, str], body: bytes, now: int
) -> None:
    with pytest.raises(Unauthorized):
        verify_webhook(SECRET, headers, body, now_s=now, tolerance_s=300)


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        sign_webhook("short", BODY, timestamp=T)
