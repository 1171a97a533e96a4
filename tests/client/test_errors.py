"""Server ``error`` frames become the matching chatcore exception."""

from __future__ import annotations

import pytest

from chatcore.client._errors import error_from_frame, expect_frame
from chatcore.errors import (
    ChatcoreError,
    ErrorCode,
    FrameTooLarge,
    InvalidRequest,
    NotFound,
    NotMember,
    Overloaded,
    ProtocolError,
    RateLimited,
    Unauthorized,
    Unavailable,
)
from chatcore.protocol import ErrorFrame, Ok, Pong


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("bad_frame", ProtocolError),
        ("too_large", FrameTooLarge),
        ("unauthorized", Unauthorized),
        ("not_member", NotMember),
        ("not_found", NotFound),
        ("invalid", InvalidRequest),
        ("rate_limited", RateLimited),
        ("unavailable", Unavailable),
        ("overloaded", Overloaded),
        ("internal", ChatcoreError),
    ],
)
def test_every_code_maps_to_its_exception(code: ErrorCode, cls: type[ChatcoreError]) -> None:
    error = error_from_frame(ErrorFrame(id=3, code=code, message=f"why {code}"))
    assert type(error) is cls
    assert error.code == code
    assert error.message == f"why {code}"


def test_rate_limited_carries_retry_after() -> None:
    error = error_from_frame(
        ErrorFrame(code="rate_limited", message="slow down", retry_after_ms=1500)
    )
    assert isinstance(error, RateLimited)
    assert error.retry_after_ms == 1500
    assert error.retriable


def test_overloaded_carries_retry_after_and_is_unavailable() -> None:
    error = error_from_frame(ErrorFrame(code="overloaded", message="later", retry_after_ms=250))
    assert isinstance(error, Overloaded) and isinstance(error, Unavailable)
    assert error.retry_after_ms == 250
    assert error.retriable


def test_rate_limited_without_retry_after_means_now() -> None:
    error = error_from_frame(ErrorFrame(code="rate_limited", message="x"))
    assert isinstance(error, RateLimited)
    assert error.retry_after_ms == 0


def test_empty_message_falls_back_to_the_code() -> None:
    assert error_from_frame(ErrorFrame(code="not_found", message="")).message == "not_found"


def test_expect_frame_passes_the_right_kind_and_refuses_another() -> None:
    pong = Pong(id=1)
    assert expect_frame(pong, Pong) is pong
    with pytest.raises(ProtocolError, match="expected Ok, got Pong"):
        expect_frame(pong, Ok)
