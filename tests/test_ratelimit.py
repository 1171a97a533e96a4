from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.errors import ChatcoreError, RateLimited
from chatcore.ratelimit import RateLimiter, RateLimitHook, TokenBucket, apply_rate_limit

# --- one bucket ----------------------------------------------------------------


def test_burst_is_allowed_then_refused_with_the_wait() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=5)

    assert [bucket.acquire(100.0) for _ in range(5)] == [0.0] * 5
    assert bucket.acquire(100.0) == pytest.approx(0.5)
    assert bucket.acquire(100.25) == pytest.approx(0.25)


def test_refused_calls_take_nothing() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=2)
    bucket.acquire(0.0, cost=2)

    waits = [bucket.acquire(0.5) for _ in range(10)]

    assert waits == [pytest.approx(0.5)] * 10
    assert bucket.tokens(0.5) == pytest.approx(0.5)
    assert bucket.acquire(1.0) == 0.0
    assert bucket.acquire(1.0) == pytest.approx(1.0)


def test_waiting_as_told_is_enough() -> None:
    bucket = TokenBucket(rate_per_s=3, burst=1)
    now = 1_750_000_000.123  # an epoch-sized clock: float rounding must not refuse
    for _ in range(1000):
        wait = bucket.acquire(now)
        if wait:
            now += wait
            assert bucket.acquire(now) == 0.0


def test_refill_over_time_is_capped_at_burst() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3)
    for _ in range(3):
        bucket.acquire(0.0)

    assert bucket.tokens(0.1) == pytest.approx(1.0)
    assert not bucket.is_full(0.2)
    assert bucket.is_full(0.3)
    assert bucket.tokens(1000.0) == 3
    assert [bucket.acquire(1000.0) for _ in range(4)][-1] == pytest.approx(0.1)


def test_cost_counts_as_that_many_tokens() -> None:
    bucket = TokenBucket(rate_per_s=4, burst=10)

    assert bucket.acquire(0.0, cost=7) == 0.0
    assert bucket.acquire(0.0, cost=5) == pytest.approx(0.5)
    assert bucket.acquire(0.0, cost=3) == 0.0
    assert bucket.acquire(0.0, cost=0) == 0.0


def test_clock_going_back_refills_nothing() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1)
    bucket.acquire(10.0)

    assert bucket.acquire(5.0) == pytest.approx(1.0)
    assert bucket.acquire(10.5) == pytest.approx(0.5)
    assert bucket.acquire(11.0) == 0.0


@pytest.mark.parametrize("cost", [-1, 1.5, math.inf])
def test_cost_that_can_never_be_allowed_is_refused(cost: float) -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1)
    with pytest.raises(ValueError, match="cost"):
        bucket.acquire(0.0, cost=cost)
    assert bucket.tokens(0.0) == 1


@pytest.mark.parametrize(
    ("rate", "burst", "match"),
    [(0, 1, "rate_per_s"), (-1, 1, "rate_per_s"), (math.nan, 1, "rate_per_s"),
     (1, 0, "burst"), (1, math.inf, "burst")],
)  # fmt: skip
def test_bad_bucket_options_are_refused(rate: float, burst: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TokenBucket(rate_per_s=rate, burst=burst)
    with pytest.raises(ValueError, match=match):
        RateLimiter(rate_per_s=rate, burst=burst)


# --- many keys -----------------------------------------------------------------


def test_keys_are_independent() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)

    assert [limiter.acquire("alice", 0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert [limiter.acquire("bob", 0.0) for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("alice", 0.0) == pytest.approx(1.0)


def test_memory_is_bounded_by_max_keys() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2, max_keys=3)

    for i in range(100):
        limiter.acquire(f"user-{i}", 0.0)
        assert len(limiter) <= 3

    assert len(limiter) == 3


def test_least_recently_used_is_dropped_first() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=1, max_keys=2)
    limiter.acquire("a", 0.0)
    limiter.acquire("b", 0.0)
    assert limiter.acquire("a", 0.0) > 0  # "a" used again: now "b" is the oldest

    limiter.acquire("c", 0.0)  # over max_keys: "b" goes

    assert limiter.acquire("a", 0.0) > 0  # still limited: kept
    assert limiter.acquire("b", 0.0) == 0.0  # dropped, so it starts full again


def test_idle_full_buckets_are_dropped_as_the_limiter_goes() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)
    for i in range(10):
        limiter.acquire(f"user-{i}", 0.0)
    assert len(limiter) == 10

    for _ in range(5):
        limiter.acquire("active", 0.5)  # nobody is full yet at t=0.5
    assert len(limiter) == 11

    for _ in range(5):
        limiter.acquire("active", 10.0)
    assert len(limiter) == 1


def test_dropping_full_buckets_changes_no_limit() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)
    limiter.acquire("idle", 0.0)
    limiter.acquire("busy", 0.0)
    limiter.acquire("busy", 0.0)

    assert limiter.prune(0.5) == 0
    assert limiter.prune(1.5) == 1  # "idle" is full again, "busy" is not
    assert len(limiter) == 1
    assert limiter.acquire("busy", 1.5) == 0.0
    assert limiter.acquire("busy", 1.5) == pytest.approx(0.5)


def test_refused_cost_on_a_new_key_keeps_nothing() -> None:
    limiter = RateLimiter(rate_per_s=1, burst=2)
    with pytest.raises(ValueError, match="cost"):
        limiter.acquire("alice", 0.0, cost=3)
    assert len(limiter) == 0


def test_max_keys_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(rate_per_s=1, burst=1, max_keys=0)


# --- the Router's side ----------------------------------------------------------


def test_check_raises_rate_limited_with_whole_milliseconds() -> None:
    limiter = RateLimiter(rate_per_s=3, burst=1)
    limiter.check("alice", 0.0)

    with pytest.raises(RateLimited) as caught:
        limiter.check("alice", 0.0)

    assert caught.value.retry_after_ms == 334  # 1/3 s, rounded up
    assert caught.value.code == "rate_limited"
    assert caught.value.retriable
    assert isinstance(caught.value, ChatcoreError)


def test_check_never_says_retry_after_zero() -> None:
    limiter = RateLimiter(rate_per_s=1000, burst=1)
    limiter.check("alice", 0.0)

    with pytest.raises(RateLimited) as caught:
        limiter.check("alice", 0.0009)  # waits 0.1 ms

    assert caught.value.retry_after_ms == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_hook_reads_the_given_clock_and_keys_by_user() -> None:
    clock = FakeClock()
    hook = RateLimiter(rate_per_s=1, burst=1).hook(clock=clock)

    hook("alice", "chat-1")
    with pytest.raises(RateLimited):
        hook("alice", "chat-2")
    hook("bob", "chat-1")
    clock.now = 1.0
    hook("alice", "chat-2")


def test_hook_with_a_key_per_chat() -> None:
    hook = RateLimiter(rate_per_s=1, burst=1).hook(
        clock=FakeClock(), key=lambda user, chat: f"{user}|{chat}"
    )

    hook("alice", "chat-1")
    hook("alice", "chat-2")
    with pytest.raises(RateLimited):
        hook("alice", "chat-1")


@pytest.mark.anyio
async def test_apply_rate_limit_takes_sync_and_async_hooks() -> None:
    calls: list[tuple[str, str]] = []

    async def async_hook(user: str, chat_id: str) -> None:
        calls.append((user, chat_id))
        raise RateLimited("slow down", retry_after_ms=250)

    hooks: list[RateLimitHook] = [
        RateLimiter(rate_per_s=1, burst=1).hook(clock=FakeClock()),
        async_hook,
    ]
    await apply_rate_limit(hooks[0], "alice", "c1")
    with pytest.raises(RateLimited):
        await apply_rate_limit(hooks[0], "alice", "c1")
    with pytest.raises(RateLimited) as caught:
        await apply_rate_limit(hooks[1], "bob", "c2")
    assert caught.value.retry_after_ms == 250
    assert calls == [("bob", "c2")]


# --- properties ----------------------------------------------------------------

steps = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # time since the previous call
        st.sampled_from([0, 0.5, 1, 1, 1, 2, 3]),  # cost
    ),
    max_size=60,
)
rates = st.floats(0.1, 1000, allow_nan=False)
bursts = st.sampled_from([3, 4, 10])
starts = st.sampled_from([0.0, 12.5, 1_750_000_000.0])


@given(rates, bursts, starts, steps)
def test_never_allows_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: float, start: float, calls: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = start
    allowed: list[tuple[float, float]] = []
    for dt, cost in calls:
        now += dt
        wait = bucket.acquire(now, cost)
        assert wait >= 0
        if wait == 0:
            allowed.append((now, cost))
        else:
            # told the truth: enough after the wait, not enough a bit before it
            assert bucket.tokens(now + wait) + rate * 1e-6 >= cost
            assert bucket.tokens(now + wait * 0.99) < cost

    tolerance = rate * 1e-6 + 1e-9 * burst
    for i in range(len(allowed)):
        total = 0.0
        for j in range(i, len(allowed)):
            total += allowed[j][1]
            elapsed = allowed[j][0] - allowed[i][0]
            assert total <= burst + rate * elapsed + tolerance


@given(rates, bursts, steps)
def test_a_refusal_changes_nothing(
    rate: float, burst: float, calls: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    for dt, cost in calls:
        now += dt
        before = bucket.tokens(now)
        if bucket.acquire(now, cost) > 0:
            assert bucket.tokens(now) == before
        else:
            assert bucket.tokens(now) == pytest.approx(before - cost, abs=1e-6 * rate + 1e-9)


@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.floats(0, 2, allow_nan=False)), max_size=80),
    st.integers(5, 10),
)
def test_limiter_with_room_matches_one_bucket_per_key(
    calls: list[tuple[str, float]], max_keys: int
) -> None:
    """Dropping idle full buckets is lossless: the same answers as never dropping any."""
    limiter = RateLimiter(rate_per_s=2, burst=3, max_keys=max_keys)
    model: dict[str, TokenBucket] = {}
    now = 0.0
    for key, dt in calls:
        now += dt
        expected = model.setdefault(key, TokenBucket(2, 3)).acquire(now)
        assert limiter.acquire(key, now) == expected
        assert len(limiter) <= 5
