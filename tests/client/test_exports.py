"""The SDK's public namespace: every name in ``__all__`` exists once, errors join the tree."""

from __future__ import annotations

import chatcore.client as client
from chatcore.errors import ChatcoreError, Unavailable


def test_all_names_exist_once_and_none_is_private() -> None:
    exported = list(client.__all__)
    assert len(exported) == len(set(exported))
    for name in exported:
        assert not name.startswith("_"), name
        assert hasattr(client, name), name


def test_the_client_error_is_an_unavailable_chatcore_error() -> None:
    error = client.ConnectionClosed("gone", close_code=1006, reason="")
    assert isinstance(error, Unavailable) and isinstance(error, ChatcoreError)
    assert error.retriable
    assert (error.code, error.close_code) == ("unavailable", 1006)


def test_every_event_is_in_the_event_union() -> None:
    union = set(client.ClientEvent.__args__)
    events = {
        client.ChatUpdated,
        client.Connected,
        client.DeviceKeysChanged,
        client.Disconnected,
        client.HistorySkipped,
        client.MessageReceived,
        client.PresenceChanged,
        client.ReceiptChanged,
        client.ServerError,
        client.SyncCompleted,
        client.TypingStarted,
    }
    assert union == events
