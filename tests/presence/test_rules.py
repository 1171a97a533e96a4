from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.errors import InvalidRequest
from chatcore.model import PresenceState
from chatcore.presence import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_TTL_S,
    DevicePresence,
    PresenceRules,
    UserPresence,
)

T0 = 1_750_000_000_000
RULES = PresenceRules()
EMPTY = UserPresence("ann")


def online(last_seen: int) -> PresenceState:
    return PresenceState("ann", True, last_seen)


def offline(last_seen: int | None) -> PresenceState:
    return PresenceState("ann", False, last_seen)


def test_defaults_follow_the_design() -> None:
    assert (DEFAULT_TTL_S, DEFAULT_HEARTBEAT_S) == (60.0, 30.0)
    assert (RULES.ttl_ms, RULES.heartbeat_ms) == (60_000, 30_000)
    assert RULES.next_heartbeat_ms(T0) == T0 + 30_000


@pytest.mark.parametrize(
    ("ttl_s", "heartbeat_s"),
    [(0, 1), (-1, 1), (math.nan, 1), (math.inf, 1), (60, 0), (60, math.nan), (60, 60), (30, 31)],
)
def test_timings_must_be_positive_finite_and_heartbeat_shorter(
    ttl_s: float, heartbeat_s: float
) -> None:
    with pytest.raises(InvalidRequest):
        PresenceRules(ttl_s=ttl_s, heartbeat_s=heartbeat_s)


def test_a_tiny_ttl_rounds_up_to_one_ms() -> None:
    update = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=0.0001)
    assert update.presence.devices == (DevicePresence("phone", T0, T0 + 1),)


def test_unknown_user_is_offline_never_seen() -> None:
    assert EMPTY.state(T0) == offline(None)
    assert not EMPTY.online(T0)


def test_first_touch_takes_the_user_online_until_the_ttl() -> None:
    update = RULES.touch(EMPTY, "phone", now_ms=T0)

    assert update.changes == (online(T0),)
    assert update.went_online and not update.went_offline
    assert update.presence.devices == (DevicePresence("phone", T0, T0 + 60_000),)
    assert update.presence.state(T0 + 59_999) == online(T0)
    assert update.presence.state(T0 + 60_000) == offline(T0)


def test_touch_uses_the_given_ttl_over_the_rules_default() -> None:
    update = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=5)
    assert update.presence.devices[0].expires_ms == T0 + 5_000
    with pytest.raises(InvalidRequest):
        RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=0)


def test_heartbeat_moves_expiry_and_last_seen_without_a_transition() -> None:
    first = RULES.touch(EMPTY, "phone", now_ms=T0).presence
    update = RULES.touch(first, "phone", now_ms=T0 + 30_000)

    assert update.changes == ()
    assert not update.went_online
    assert update.presence.devices == (DevicePresence("phone", T0 + 30_000, T0 + 90_000),)
    assert update.presence.state(T0 + 80_000) == online(T0 + 30_000)


def test_second_device_is_no_transition() -> None:
    one = RULES.touch(EMPTY, "phone", now_ms=T0).presence
    update = RULES.touch(one, "laptop", now_ms=T0 + 5)
    assert update.changes == ()
    assert {d.device for d in update.presence.devices} == {"phone", "laptop"}


def test_leave_of_the_last_device_takes_the_user_offline_at_that_time() -> None:
    two = RULES.touch(RULES.touch(EMPTY, "phone", now_ms=T0).presence, "laptop", now_ms=T0 + 1)

    one = RULES.leave(two.presence, "phone", now_ms=T0 + 10)
    assert one.changes == ()
    assert not one.went_offline
    assert one.presence.state(T0 + 10) == online(T0 + 10)

    none = RULES.leave(one.presence, "laptop", now_ms=T0 + 20)
    assert none.changes == (offline(T0 + 20),)
    assert none.went_offline
    assert none.presence.devices == ()


def test_leave_of_an_unknown_device_changes_nothing() -> None:
    one = RULES.touch(EMPTY, "phone", now_ms=T0).presence
    update = RULES.leave(one, "tablet", now_ms=T0 + 10)
    assert update.presence == one
    assert update.changes == ()
    assert RULES.leave(EMPTY, "phone", now_ms=T0).presence == EMPTY


def test_expire_drops_expired_devices_and_reports_the_user_offline() -> None:
    one = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=10).presence

    early = RULES.expire(one, now_ms=T0 + 9_999)
    assert early.presence == one
    assert early.changes == ()

    late = RULES.expire(one, now_ms=T0 + 10_000)
    assert late.changes == (offline(T0),)
    assert late.went_offline
    assert late.presence == UserPresence("ann", (), T0)
    assert RULES.expire(late.presence, now_ms=T0 + 20_000).changes == ()


def test_expire_of_one_of_two_devices_is_no_transition() -> None:
    phone = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=10).presence
    both = RULES.touch(phone, "laptop", now_ms=T0 + 1, ttl_s=60).presence
    update = RULES.expire(both, now_ms=T0 + 10_000)
    assert update.changes == ()
    assert [d.device for d in update.presence.devices] == ["laptop"]


def test_last_seen_after_expiry_is_the_latest_touch_or_leave() -> None:
    p = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=10).presence
    p = RULES.touch(p, "laptop", now_ms=T0 + 2_000, ttl_s=10).presence
    p = RULES.leave(p, "laptop", now_ms=T0 + 5_000).presence
    assert RULES.expire(p, now_ms=T0 + 10_000).changes == (offline(T0 + 5_000),)


def test_touch_after_unnoticed_expiry_reports_offline_then_online() -> None:
    one = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=10).presence
    update = RULES.touch(one, "phone", now_ms=T0 + 15_000)
    assert update.changes == (offline(T0), online(T0 + 15_000))
    assert update.went_online


def test_leave_after_unnoticed_expiry_reports_the_expiry_only() -> None:
    one = RULES.touch(EMPTY, "phone", now_ms=T0, ttl_s=10).presence
    update = RULES.leave(one, "phone", now_ms=T0 + 15_000)
    assert update.changes == (offline(T0),)
    assert not update.went_offline
    assert update.presence.state(T0 + 15_000) == offline(T0)


def test_a_late_event_never_moves_last_seen_back() -> None:
    p = RULES.touch(EMPTY, "phone", now_ms=T0 + 100).presence
    p = RULES.touch(p, "laptop", now_ms=T0 + 50).presence
    assert p.last_seen == T0 + 100


_devices = st.sampled_from(["phone", "laptop", "web"])
_ops = st.lists(
    st.tuples(
        st.sampled_from(["touch", "leave", "expire"]),
        _devices,
        st.integers(0, 40_000),
        st.sampled_from([1.0, 10.0, 60.0]),
    ),
    max_size=40,
)


@given(_ops)
def test_transitions_alternate_and_match_the_clock(
    ops: list[tuple[str, str, int, float]],
) -> None:
    presence, now, announced = EMPTY, T0, False
    touches: list[int] = []
    for op, device, step, ttl_s in ops:
        now += step
        was_online = presence.online(now)
        if op == "touch":
            update = RULES.touch(presence, device, now_ms=now, ttl_s=ttl_s)
            touches.append(now)
            assert update.went_online == (not was_online)
        elif op == "leave":
            update = RULES.leave(presence, device, now_ms=now)
            assert update.went_offline == (was_online and not update.presence.online(now))
        else:
            update = RULES.expire(presence, now_ms=now)
            assert not was_online or update.changes == ()
        for change in update.changes:
            assert change.online != announced, "two transitions the same way in a row"
            if change.online:
                assert change.last_seen == now
            else:
                assert change.last_seen in (presence.last_seen, now)
            announced = change.online
        assert announced == update.presence.online(now)
        assert all(d.live(now) for d in update.presence.devices)
        assert len({d.device for d in update.presence.devices}) == len(update.presence.devices)
        if presence.last_seen is not None:
            assert update.presence.last_seen is not None
            assert update.presence.last_seen >= presence.last_seen
        if touches:
            assert update.presence.last_seen is not None
            assert update.presence.last_seen >= max(touches)
        presence = update.presence
