"""The reconnect policy: delays grow, stay capped and jittered; close codes map to actions."""

from __future__ import annotations

import random

import pytest

from chatcore.client import Backoff, Reconnect, reconnect_after


def test_delays_double_until_the_cap_without_jitter() -> None:
    backoff = Backoff(initial_s=0.5, max_s=10.0, jitter=0.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert backoff.attempts == 8


def test_jitter_stays_within_its_band_and_varies() -> None:
    backoff = Backoff(initial_s=1.0, max_s=4.0, jitter=0.5, rng=random.Random(7))
    for _ in range(3):  # 1, 2, 4
        backoff.next_delay()
    capped = [backoff.next_delay() for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in capped)
    assert len(set(capped)) > 100, "jitter must spread clients out"
    assert max(capped) <= 4.0


def test_full_jitter_may_reach_zero_but_never_exceeds_the_ceiling() -> None:
    backoff = Backoff(initial_s=1.0, max_s=1.0, jitter=1.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(500)]
    assert min(delays) < 0.05
    assert max(delays) <= 1.0


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial_s=0.25, max_s=8.0, jitter=0.0)
    for _ in range(6):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 0.25


def test_many_attempts_do_not_overflow() -> None:
    backoff = Backoff(initial_s=0.5, max_s=10.0, jitter=0.0, attempts=10_000)
    assert backoff.next_delay() == 10.0


def test_same_seed_same_delays() -> None:
    a = Backoff(rng=random.Random(42))
    b = Backoff(rng=random.Random(42))
    assert [a.next_delay() for _ in range(10)] == [b.next_delay() for _ in range(10)]


@pytest.mark.parametrize(
    "settings",
    [
        {"initial_s": 0.0},
        {"initial_s": -1.0},
        {"initial_s": 2.0, "max_s": 1.0},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (4001, Reconnect.STOP),
        (1001, Reconnect.NOW),
        (1012, Reconnect.NOW),
        (4008, Reconnect.NOW),
        (1000, Reconnect.BACKOFF),
        (1006, Reconnect.BACKOFF),
        (1008, Reconnect.BACKOFF),
        (1011, Reconnect.BACKOFF),
        (4002, Reconnect.BACKOFF),
        (None, Reconnect.BACKOFF),
    ],
)
def test_close_codes(code: int | None, action: Reconnect) -> None:
    assert reconnect_after(code) is action
