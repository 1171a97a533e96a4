from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcore.fanout import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_SYNC_THRESHOLD,
    FanoutPlan,
    FanoutPlanner,
    GatewayBatch,
)
from chatcore.model import Connection


def conn(user: str, device: str = "phone", gateway: str = "gw-a") -> Connection:
    return Connection(
        user=user, device=device, gateway=gateway, conn_id=f"{user}/{device}@{gateway}"
    )


def by_user(*conns: Connection) -> dict[str, list[Connection]]:
    result: dict[str, list[Connection]] = {}
    for c in conns:
        result.setdefault(c.user, []).append(c)
    return result


def assert_partition(plan: FanoutPlan) -> None:
    """Each batch is one gateway's, and no connection is in two batches."""
    for batch in plan.batches:
        assert batch.conns, "empty batch"
        assert {c.gateway for c in batch.conns} == {batch.gateway}
    ids = [c.conn_id for c in plan.targets]
    assert len(ids) == len(set(ids)), "a connection is targeted twice"


# --- who gets the message ------------------------------------------------------


def test_every_device_of_every_member_gets_it_sender_included() -> None:
    alice_phone, alice_web = conn("alice", "phone", "gw-a"), conn("alice", "web", "gw-b")
    bob_phone = conn("bob", "phone", "gw-b")
    plan = FanoutPlanner().plan(
        ["alice", "bob", "carol"],
        by_user(alice_phone, alice_web, bob_phone),
        sender="alice",
    )

    assert Counter(plan.targets) == Counter([alice_phone, alice_web, bob_phone])
    assert plan.online_users == ("alice", "bob")
    assert plan.offline == ("carol",)
    assert_partition(plan)


def test_sender_without_connection_is_not_offline() -> None:
    plan = FanoutPlanner().plan(["alice", "bob"], by_user(conn("bob")), sender="alice")

    assert plan.offline == ()
    assert plan.online_users == ("bob",)
    assert plan.targets == (conn("bob"),)


def test_without_sender_every_unconnected_member_is_offline() -> None:
    plan = FanoutPlanner().plan(["alice", "bob", "carol"], by_user(conn("bob")))

    assert plan.offline == ("alice", "carol")


def test_empty_string_sender_is_still_a_sender() -> None:
    plan = FanoutPlanner().plan(["", "bob"], {}, sender="")

    assert plan.offline == ("bob",)


def test_connections_of_non_members_are_ignored() -> None:
    mallory = conn("mallory", "laptop", "gw-z")
    sneaky = conn("mallory", "tablet", "gw-a")
    connections = by_user(conn("alice"), mallory)
    connections["alice"].append(sneaky)  # listed under a member, but is mallory's device

    plan = FanoutPlanner().plan(["alice"], connections, sender="alice")

    assert plan.targets == (conn("alice"),)
    assert plan.online_users == ("alice",)
    assert plan.gateways == ("gw-a",)


def test_sender_who_is_no_longer_a_member_gets_nothing() -> None:
    plan = FanoutPlanner().plan(["bob"], by_user(conn("alice"), conn("bob")), sender="alice")

    assert plan.targets == (conn("bob"),)
    assert plan.offline == ()


def test_duplicate_connections_are_targeted_once() -> None:
    c = conn("alice", "phone", "gw-a")
    connections = {"alice": [c, c, c]}

    plan = FanoutPlanner().plan(["alice", "alice"], connections)

    assert plan.targets == (c,)
    assert plan.batches == [GatewayBatch("gw-a", (c,))]


def test_conflicting_entries_for_one_conn_id_resolve_the_same_whatever_the_order() -> None:
    old = Connection(user="alice", device="phone", gateway="gw-b", conn_id="c1")
    new = Connection(user="alice", device="phone", gateway="gw-a", conn_id="c1")
    planner = FanoutPlanner()

    first = planner.plan(["alice"], {"alice": [old, new]})
    second = planner.plan(["alice"], {"alice": [new, old]})

    assert first == second
    assert len(first.targets) == 1


def test_no_members_no_targets() -> None:
    plan = FanoutPlanner().plan([], by_user(conn("alice")), sender="alice")

    assert plan == FanoutPlan(mode="sync", batches=[], offline=(), online_users=())


def test_nobody_connected() -> None:
    plan = FanoutPlanner().plan(["bob", "alice"], {"alice": [], "bob": []})

    assert plan.batches == []
    assert plan.offline == ("alice", "bob")
    assert plan.online_users == ()


# --- order ---------------------------------------------------------------------


def test_order_is_by_gateway_then_user_then_device() -> None:
    conns = [
        conn("bob", "web", "gw-b"),
        conn("alice", "web", "gw-b"),
        conn("alice", "phone", "gw-b"),
        conn("carol", "phone", "gw-a"),
        conn("bob", "phone", "gw-c"),
    ]
    plan = FanoutPlanner().plan(["alice", "bob", "carol"], by_user(*conns))

    assert [(b.gateway, [(c.user, c.device) for c in b.conns]) for b in plan.batches] == [
        ("gw-a", [("carol", "phone")]),
        ("gw-b", [("alice", "phone"), ("alice", "web"), ("bob", "web")]),
        ("gw-c", [("bob", "phone")]),
    ]
    assert plan.gateways == ("gw-a", "gw-b", "gw-c")


def test_same_input_in_any_order_gives_the_same_plan() -> None:
    members, connections = make_group(50, seed=1)
    planner = FanoutPlanner()
    expected = planner.plan(members, connections, sender=members[0])
    rng = random.Random(2)
    for _ in range(5):
        shuffled_members = rng.sample(members, len(members))
        items = list(connections.items())
        rng.shuffle(items)
        shuffled = {user: rng.sample(list(cs), len(cs)) for user, cs in items}
        assert planner.plan(shuffled_members, shuffled, sender=members[0]) == expected


# --- sync vs batched -----------------------------------------------------------


def make_group(
    size: int, *, gateways: int = 3, seed: int = 0
) -> tuple[list[str], dict[str, list[Connection]]]:
    """``size`` members, each with 0-3 devices on random gateways."""
    rng = random.Random(seed)
    members = [f"user-{i:03d}" for i in range(size)]
    connections = {
        user: [
            conn(user, f"dev-{d}", f"gw-{rng.randrange(gateways)}") for d in range(rng.randrange(4))
        ]
        for user in members
    }
    return members, connections


def test_defaults_are_documented_values() -> None:
    planner = FanoutPlanner()
    assert (planner.sync_threshold, planner.batch_size) == (32, 64)
    assert (DEFAULT_SYNC_THRESHOLD, DEFAULT_BATCH_SIZE) == (32, 64)


@pytest.mark.parametrize(("size", "mode"), [(10, "sync"), (50, "batched"), (256, "batched")])
def test_mode_by_group_size(size: int, mode: str) -> None:
    members, connections = make_group(size, seed=size)
    plan = FanoutPlanner().plan(members, connections, sender=members[0])

    assert plan.mode == mode
    assert_partition(plan)
    expected = {c for cs in connections.values() for c in cs}
    assert set(plan.targets) == expected
    assert len(plan.targets) == len(expected)
    per_gateway = Counter(c.gateway for c in expected)
    batches_per_gateway = Counter(b.gateway for b in plan.batches)
    if mode == "sync":
        assert batches_per_gateway == Counter(dict.fromkeys(per_gateway, 1))
    else:
        assert all(len(b.conns) <= DEFAULT_BATCH_SIZE for b in plan.batches)
        assert batches_per_gateway == Counter(
            {gw: math.ceil(n / DEFAULT_BATCH_SIZE) for gw, n in per_gateway.items()}
        )


def test_256_member_group_is_split_into_bounded_batches() -> None:
    members = [f"u{i:03d}" for i in range(256)]
    connections = by_user(*(conn(u, d, "gw-a") for u in members for d in ("phone", "web")))

    plan = FanoutPlanner().plan(members, connections, sender=members[0])

    assert plan.mode == "batched"
    assert [len(b.conns) for b in plan.batches] == [64] * 8
    assert len(plan.targets) == 512


def test_threshold_boundary() -> None:
    planner = FanoutPlanner(sync_threshold=3, batch_size=1)
    three = ["a", "b", "c"]
    connections = by_user(*(conn(u) for u in [*three, "d"]))

    at = planner.plan(three, connections)
    above = planner.plan([*three, "d"], connections)

    assert at.mode == "sync"
    assert [len(b.conns) for b in at.batches] == [3]
    assert above.mode == "batched"
    assert [len(b.conns) for b in above.batches] == [1, 1, 1, 1]


def test_threshold_counts_distinct_members() -> None:
    planner = FanoutPlanner(sync_threshold=2)
    assert planner.plan(["a", "b", "a", "b"], {}).mode == "sync"
    assert planner.mode_for(2) == "sync"
    assert planner.mode_for(3) == "batched"


def test_sync_mode_keeps_one_batch_per_gateway_even_past_batch_size() -> None:
    planner = FanoutPlanner(sync_threshold=4, batch_size=2)
    connections = by_user(*(conn("a", f"d{i}") for i in range(5)))

    plan = planner.plan(["a"], connections)

    assert plan.mode == "sync"
    assert [len(b.conns) for b in plan.batches] == [5]


def test_zero_threshold_batches_every_chat() -> None:
    plan = FanoutPlanner(sync_threshold=0, batch_size=1).plan(["a"], by_user(conn("a")))
    assert plan.mode == "batched"


@pytest.mark.parametrize("kwargs", [{"sync_threshold": -1}, {"batch_size": 0}, {"batch_size": -5}])
def test_bad_options_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        FanoutPlanner(**kwargs)


# --- properties ----------------------------------------------------------------

USERS = [f"u{i}" for i in range(8)]
conn_strategy = st.builds(
    conn,
    user=st.sampled_from(USERS),
    device=st.sampled_from(["phone", "web", "tablet"]),
    gateway=st.sampled_from(["gw-0", "gw-1", "gw-2", "gw-3"]),
)


def group_connections(
    conns: Sequence[Connection], keys: Sequence[str]
) -> dict[str, list[Connection]]:
    """Connections listed mostly under their user, some under another key."""
    result: dict[str, list[Connection]] = {}
    for i, c in enumerate(conns):
        key = c.user if i % 3 else keys[i % len(keys)]
        result.setdefault(key, []).append(c)
    return result


@given(
    members=st.lists(st.sampled_from(USERS), max_size=10),
    conns=st.lists(conn_strategy, max_size=40),
    keys=st.lists(st.sampled_from(USERS), min_size=1, max_size=3),
    sender=st.none() | st.sampled_from(USERS),
    sync_threshold=st.integers(0, 6),
    batch_size=st.integers(1, 5),
)
def test_plan_matches_model(
    members: list[str],
    conns: list[Connection],
    keys: list[str],
    sender: str | None,
    sync_threshold: int,
    batch_size: int,
) -> None:
    connections: Mapping[str, Sequence[Connection]] = group_connections(conns, keys)
    planner = FanoutPlanner(sync_threshold=sync_threshold, batch_size=batch_size)

    plan = planner.plan(members, connections, sender=sender)

    member_set = set(members)
    expected = {c for c in conns if c.user in member_set}
    # every device of every member exactly once, nothing else
    assert Counter(plan.targets) == Counter(expected)
    # batches partition the targets, in (gateway, user, device) order
    assert_partition(plan)
    assert list(plan.targets) == sorted(expected, key=lambda c: (c.gateway, c.user, c.device))
    online = {c.user for c in expected}
    assert plan.online_users == tuple(sorted(online))
    assert plan.offline == tuple(sorted(member_set - online - {sender}))
    assert set(plan.offline).isdisjoint(plan.online_users)
    per_gateway = Counter(c.gateway for c in expected)
    batches_per_gateway = Counter(b.gateway for b in plan.batches)
    if len(member_set) <= sync_threshold:
        assert plan.mode == "sync"
        assert batches_per_gateway == Counter(dict.fromkeys(per_gateway, 1))
    else:
        assert plan.mode == "batched"
        assert all(len(b.conns) <= batch_size for b in plan.batches)
        assert batches_per_gateway == Counter(
            {gw: math.ceil(n / batch_size) for gw, n in per_gateway.items()}
        )
    # a pure function: same input, same plan
    assert planner.plan(list(reversed(members)), connections, sender=sender) == plan


def test_public_names_are_exported() -> None:
    import chatcore.fanout

    assert sorted(chatcore.fanout.__all__) == sorted(set(chatcore.fanout.__all__))
    for name in chatcore.fanout.__all__:
        assert getattr(chatcore.fanout, name) is not None
