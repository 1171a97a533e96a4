"""The text and payloads each push service gets, their size bounds, and the privacy rule."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.errors import InvalidRequest
from chatcore.offline import PushNotification
from chatcore.push import PushText, push_text, summary
from chatcore.push.render import (
    APNS_MAX_BYTES,
    FCM_MAX_BYTES,
    WEBPUSH_MAX_BYTES,
    apns_payload,
    fcm_message,
    webhook_payload,
    webpush_payload,
)


def note(
    count: int, *senders: str, preview: str | None = None, encrypted: bool = False
) -> PushNotification:
    return PushNotification("bob", "c1", count, senders, 40, preview=preview, encrypted=encrypted)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (note(1, "Alice"), "1 new message from Alice"),
        (note(12, "Alice"), "12 new messages from Alice"),
        (note(3, "Alice", "Bob"), "3 new messages from Alice and Bob"),
        (note(4, "Alice", "Bob", "Carol"), "4 new messages from Alice, Bob and Carol"),
        (note(9, "A", "B", "C", "D", "E"), "9 new messages from A, B and 3 others"),
        (note(2), "2 new messages"),
    ],
)
def test_summary(n: PushNotification, text: str) -> None:
    assert summary(n) == text


def test_the_preview_is_the_body() -> None:
    assert push_text(note(1, "Alice", preview="hi")) == PushText("1 new message from Alice", "hi")


def test_an_encrypted_notification_never_shows_its_preview() -> None:
    n = note(1, "Alice", preview="the secret", encrypted=True)
    assert push_text(n).body is None
    for payload in (
        webpush_payload(n),
        apns_payload(n),
        msgspec.json.encode(fcm_message(n, "tok")),
        msgspec.json.encode(webhook_payload(n)),
    ):
        assert b"secret" not in payload


def test_payload_shapes() -> None:
    n = note(12, "Alice", preview="hi")
    assert msgspec.json.decode(webpush_payload(n)) == {
        "title": "12 new messages from Alice",
        "body": "hi",
        "data": {"chat_id": "c1", "last_seq": 40, "count": 12},
    }
    assert msgspec.json.decode(apns_payload(n)) == {
        "aps": {
            "alert": {"title": "12 new messages from Alice", "body": "hi"},
            "sound": "default",
            "thread-id": "c1",
        },
        "chat_id": "c1",
        "last_seq": 40,
        "count": 12,
    }
    message = fcm_message(n, "tok")["message"]
    assert message["token"] == "tok"
    assert message["notification"] == {"title": "12 new messages from Alice", "body": "hi"}
    assert message["data"] == {"chat_id": "c1", "last_seq": "40", "count": "12"}  # strings only


@given(
    senders=st.lists(st.text(max_size=500), max_size=50),
    preview=st.none() | st.text(max_size=5000),
    chat=st.text(min_size=1, max_size=300),
)
def test_payloads_stay_within_each_services_limit(
    senders: list[str], preview: str | None, chat: str
) -> None:
    n = PushNotification("bob", chat, 7, tuple(senders), 9, preview=preview)
    assert len(webpush_payload(n)) <= WEBPUSH_MAX_BYTES
    assert len(apns_payload(n)) <= APNS_MAX_BYTES
    assert len(msgspec.json.encode(fcm_message(n, "t" * 200))) <= FCM_MAX_BYTES


def test_a_payload_that_cannot_fit_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        apns_payload(PushNotification("bob", "c" * 5000, 1, ("A",), 1))
