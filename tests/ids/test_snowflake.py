from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.errors import ClockMovedBackwards
from chatcore.ids import (
    DEFAULT_EPOCH_MS,
    MAX_NODE_ID,
    MAX_SEQUENCE,
    SnowflakeGenerator,
    SnowflakeParts,
    pack_snowflake,
    parse_snowflake,
)

from ._fakes import FakeClock

T0 = DEFAULT_EPOCH_MS + 86_400_000 * 500
PER_MS = MAX_SEQUENCE + 1


def make(
    node_id: int = 7, *, max_backward_ms: int = 10_000
) -> tuple[SnowflakeGenerator, FakeClock]:
    clock = FakeClock(T0)
    gen = SnowflakeGenerator(
        node_id, clock=clock, sleep=clock.sleep, max_backward_ms=max_backward_ms
    )
    return gen, clock


def assert_strictly_increasing(ids: list[int]) -> None:
    assert all(a < b for a, b in itertools.pairwise(ids)), "ids not strictly increasing"


def test_id_carries_clock_node_and_sequence() -> None:
    gen, _ = make(node_id=513)
    first, second = gen.next_id(), gen.next_id()
    assert parse_snowflake(first) == SnowflakeParts(T0, 513, 0)
    assert parse_snowflake(second) == SnowflakeParts(T0, 513, 1)


def test_more_than_4096_in_one_ms_waits_through_injected_sleep() -> None:
    gen, clock = make()
    ids = [gen.next_id() for _ in range(3 * PER_MS + 5)]

    assert_strictly_increasing(ids)
    parts = [parse_snowflake(i) for i in ids]
    assert [p.timestamp_ms for p in parts[:PER_MS]] == [T0] * PER_MS
    assert [p.sequence for p in parts[:PER_MS]] == list(range(PER_MS))
    assert parts[PER_MS].timestamp_ms > T0
    assert parts[PER_MS].sequence == 0
    assert clock.slept_s > 0
    assert 1 <= parts[-1].timestamp_ms - T0 <= 10


def test_clock_that_stalls_then_moves_without_sleep() -> None:
    """A clock deaf to ``sleep`` that moves after many reads: no hang, no duplicate."""
    state = {"reads": 0}

    def clock() -> int:
        state["reads"] += 1
        return T0 if state["reads"] < 10_000 else T0 + state["reads"] // 10_000

    gen = SnowflakeGenerator(3, clock=clock, sleep=lambda _s: None)
    ids = [gen.next_id() for _ in range(2 * PER_MS + 1)]

    assert_strictly_increasing(ids)
    assert len({parse_snowflake(i).timestamp_ms for i in ids}) == 3


def test_clock_stepping_back_keeps_ids_increasing_on_the_last_ms() -> None:
    gen, clock = make()
    ids = [gen.next_id(), gen.next_id()]
    for back in (5, 900, 1):
        clock.set(T0 - back)
        ids += [gen.next_id() for _ in range(3)]
    clock.set(T0 + 1)
    ids.append(gen.next_id())

    assert_strictly_increasing(ids)
    stamps = [parse_snowflake(i).timestamp_ms for i in ids]
    assert stamps == [T0] * 11 + [T0 + 1]


def test_sequence_used_up_while_clock_is_behind_waits_for_it_to_catch_up() -> None:
    gen, clock = make()
    first = gen.next_id()
    clock.set(T0 - 3)
    ids = [first] + [gen.next_id() for _ in range(PER_MS + 1)]

    assert_strictly_increasing(ids)
    assert parse_snowflake(ids[-1]).timestamp_ms == T0 + 1
    assert clock() == T0 + 1


def test_step_back_beyond_the_bound_raises_and_generator_recovers() -> None:
    gen, clock = make(max_backward_ms=10_000)
    before = gen.next_id()
    clock.set(T0 - 10_000)
    within = gen.next_id()
    clock.set(T0 - 10_001)

    with pytest.raises(ClockMovedBackwards, match=r"by 10001 ms") as info:
        gen.next_id()
    assert info.value.retriable

    clock.set(T0 + 2)
    after = gen.next_id()
    assert before < within < after


def test_zero_bound_refuses_any_step_back() -> None:
    gen, clock = make(max_backward_ms=0)
    gen.next_id()
    clock.set(T0 - 1)
    with pytest.raises(ClockMovedBackwards, match="by 1 ms"):
        gen.next_id()


def test_clock_jumping_far_back_during_the_wait_raises() -> None:
    gen, clock = make(max_backward_ms=50)
    for _ in range(PER_MS):
        gen.next_id()
    original_sleep = clock.sleep

    def sleep_then_jump(seconds: float) -> None:
        assert clock.slept_s < 1, "the generator kept waiting instead of raising"
        original_sleep(seconds)
        clock.set(T0 - 51)

    gen._sleep = sleep_then_jump  # reach in to make the clock jump mid-wait
    with pytest.raises(ClockMovedBackwards, match="by 51 ms"):
        gen.next_id()


@pytest.mark.parametrize("node_id", [-1, MAX_NODE_ID + 1, 1 << 20])
def test_node_id_out_of_range_is_rejected(node_id: int) -> None:
    with pytest.raises(ValueError, match=r"node_id must be in 0\.\.1023"):
        SnowflakeGenerator(node_id)


@pytest.mark.parametrize("node_id", [True, 1.0, "1"])
def test_node_id_of_wrong_type_is_rejected(node_id: object) -> None:
    with pytest.raises(TypeError, match="node_id must be an int"):
        SnowflakeGenerator(node_id)  # type: ignore[arg-type]


def test_epoch_in_the_future_is_rejected() -> None:
    with pytest.raises(ValueError, match="in the future"):
        SnowflakeGenerator(1, epoch_ms=T0 + 1, clock=lambda: T0)


def test_epoch_too_old_for_41_bits_is_rejected() -> None:
    with pytest.raises(ValueError, match="41-bit range"):
        SnowflakeGenerator(1, epoch_ms=0, clock=lambda: 1 << 41)


@pytest.mark.parametrize("kwargs", [{"epoch_ms": -1}, {"max_backward_ms": -1}])
def test_negative_options_are_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SnowflakeGenerator(1, **kwargs)  # type: ignore[arg-type]


def test_custom_epoch_shifts_the_timestamp() -> None:
    epoch = T0 - 1234
    gen = SnowflakeGenerator(9, epoch_ms=epoch, clock=lambda: T0)
    snowflake = gen.next_id()
    assert snowflake >> 22 == 1234
    assert parse_snowflake(snowflake, epoch_ms=epoch) == SnowflakeParts(T0, 9, 0)


def test_default_clock_gives_ids_near_now() -> None:
    before = time.time_ns() // 1_000_000
    parts = parse_snowflake(SnowflakeGenerator(1).next_id())
    after = time.time_ns() // 1_000_000
    assert before <= parts.timestamp_ms <= after


@pytest.mark.parametrize("bad", [-1, 1 << 63])
def test_parse_rejects_non_snowflakes(bad: int) -> None:
    with pytest.raises(ValueError, match="not a Snowflake id"):
        parse_snowflake(bad)


@pytest.mark.parametrize(
    ("timestamp_ms", "node_id", "sequence"),
    [(DEFAULT_EPOCH_MS - 1, 0, 0), (T0, 1024, 0), (T0, 0, 4096), (T0, 0, -1)],
)
def test_pack_rejects_out_of_range_parts(timestamp_ms: int, node_id: int, sequence: int) -> None:
    with pytest.raises(ValueError, match=r"range|must be in"):
        pack_snowflake(timestamp_ms, node_id, sequence)


epochs = st.integers(min_value=0, max_value=DEFAULT_EPOCH_MS * 2)


@given(
    epoch=epochs,
    offset=st.integers(min_value=0, max_value=(1 << 41) - 1),
    node_id=st.integers(min_value=0, max_value=MAX_NODE_ID),
    sequence=st.integers(min_value=0, max_value=MAX_SEQUENCE),
)
def test_pack_then_parse_round_trips(epoch: int, offset: int, node_id: int, sequence: int) -> None:
    snowflake = pack_snowflake(epoch + offset, node_id, sequence, epoch_ms=epoch)
    assert 0 <= snowflake < 1 << 63
    assert parse_snowflake(snowflake, epoch_ms=epoch) == (epoch + offset, node_id, sequence)


@given(snowflake=st.integers(min_value=0, max_value=(1 << 63) - 1), epoch=epochs)
def test_parse_then_pack_round_trips(snowflake: int, epoch: int) -> None:
    assert pack_snowflake(*parse_snowflake(snowflake, epoch_ms=epoch), epoch_ms=epoch) == snowflake


# One step of a clock script: move the clock by ``delta`` ms, then ask for ``count`` ids.
# At most 40 steps of 100 ids stay under 4096 per ms, so the clock moves only by script.
clock_scripts = st.lists(
    st.tuples(st.integers(min_value=-60, max_value=60), st.integers(min_value=1, max_value=100)),
    min_size=1,
    max_size=40,
)


@given(
    script=clock_scripts,
    node_ids=st.lists(
        st.integers(min_value=0, max_value=MAX_NODE_ID), min_size=2, max_size=2, unique=True
    ),
)
def test_generators_with_different_node_ids_never_collide(
    script: list[tuple[int, int]], node_ids: list[int]
) -> None:
    """Two generators on one erratic clock: no shared id, each strictly increasing."""
    clock = FakeClock(T0)
    bound = 40
    gens = [
        SnowflakeGenerator(n, clock=clock, sleep=clock.sleep, max_backward_ms=bound)
        for n in node_ids
    ]
    issued = [[gen.next_id()] for gen in gens]
    highest = T0
    for delta, count in script:
        clock.advance(delta)
        now = clock()
        if highest - now > bound:
            for gen in gens:
                with pytest.raises(ClockMovedBackwards):
                    gen.next_id()
            continue
        for gen, ids in zip(gens, issued, strict=True):
            ids.extend(gen.next_id() for _ in range(count))
        highest = max(highest, now)

    for node_id, ids in zip(node_ids, issued, strict=True):
        assert_strictly_increasing(ids)
        assert {parse_snowflake(i).node_id for i in ids} <= {node_id}
        assert all(parse_snowflake(i).timestamp_ms <= highest for i in ids)
    assert not set(issued[0]) & set(issued[1])
