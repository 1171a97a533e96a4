"""A network partition between the gateway and Kafka: ``ip netns``, a veth pair, ``tc netem``.

Kafka runs inside a network namespace of its own, reachable only over a veth pair
(10.231.N.1 on this side, 10.231.N.2 inside); ``chatcore serve``, Redis and the
clients stay on this side's loopback. ``tc qdisc ... netem loss 100%`` (or the ``blackhole``
qdisc, where the kernel lacks netem) on both ends of the pair drops every packet
between the gateway and Kafka (no RST: connections
hang, as in a real partition) until the qdisc is deleted. Needs root (``ip``, ``tc``).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import anyio

from benchmarks.faults.scenarios import (
    Context,
    Outcome,
    Senders,
    _clients,
    _final,
    _groups,
    _tally_figures,
    running,
)
from benchmarks.faults.stack import FaultFailed, Services

__all__ = ["partition"]


async def _run(*cmd: str) -> None:
    done = await anyio.run_process(list(cmd), check=False)
    if done.returncode != 0:
        raise FaultFailed(f"{' '.join(cmd)}: {done.stderr.decode().strip()}")


@dataclass
class Namespace:
    name: str
    outside: str
    inside: str
    outside_ip: str
    inside_ip: str

    qdisc: tuple[str, ...] = ("netem", "loss", "100%")

    async def cut(self) -> None:
        """Drop every packet both ways: ``netem loss 100%``, or the ``blackhole`` qdisc
        where the kernel has no netem (the same effect: every packet dropped)."""
        try:
            await _run("tc", "qdisc", "add", "dev", self.outside, "root", *self.qdisc)
        except FaultFailed:
            self.qdisc = ("blackhole",)
            await _run("tc", "qdisc", "add", "dev", self.outside, "root", *self.qdisc)
        await _run(
            "ip", "netns", "exec", self.name,
            "tc", "qdisc", "add", "dev", self.inside, "root", *self.qdisc,
        )  # fmt: skip

    async def heal(self) -> None:
        await _run("tc", "qdisc", "del", "dev", self.outside, "root")
        await _run(
            "ip", "netns", "exec", self.name, "tc", "qdisc", "del", "dev", self.inside, "root"
        )


@asynccontextmanager
async def namespace(tag: str) -> AsyncIterator[Namespace]:
    """A network namespace joined to this one by a veth pair; removed on the way out."""
    if os.geteuid() != 0 or not shutil.which("tc") or not shutil.which("ip"):
        raise FaultFailed("the partition needs root and the `ip` and `tc` commands")
    n = int(tag[:4], 16) % 250 + 1
    ns = Namespace(
        f"ccf-{tag}", f"ccfo{tag[:6]}", f"ccfi{tag[:6]}", f"10.231.{n}.1", f"10.231.{n}.2"
    )
    await _run("ip", "netns", "add", ns.name)
    try:
        await _run("ip", "link", "add", ns.outside, "type", "veth", "peer", "name", ns.inside)
        await _run("ip", "link", "set", ns.inside, "netns", ns.name)
        await _run("ip", "addr", "add", f"{ns.outside_ip}/30", "dev", ns.outside)
        await _run("ip", "link", "set", ns.outside, "up")
        await _run("ip", "-n", ns.name, "addr", "add", f"{ns.inside_ip}/30", "dev", ns.inside)
        await _run("ip", "-n", ns.name, "link", "set", ns.inside, "up")
        await _run("ip", "-n", ns.name, "link", "set", "lo", "up")
        yield ns
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.run_process(["ip", "link", "del", ns.outside], check=False)
            await anyio.run_process(["ip", "netns", "del", ns.name], check=False)


class NamespacedKafka(Services):
    """Our Kafka, started by ``scripts/services`` inside the namespace, on its veth address."""

    def __init__(self, base: Services, ns: Namespace) -> None:
        super().__init__(
            base.data.parent / f"{base.data.name}-{ns.name}", base.redis_port, base.kafka_port
        )
        self.ns = ns

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.ns.inside_ip}:{self.kafka_port}"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["CHATCORE_KAFKA_HOST"] = self.ns.inside_ip
        return env

    async def run(self, *args: str, timeout_s: float = 240.0, prefix: tuple[str, ...] = ()) -> str:
        # ip netns exec: the service (setsid, detached) stays inside the namespace.
        inside = ("ip", "netns", "exec", self.ns.name, *prefix)
        return await super().run(*args, timeout_s=timeout_s, prefix=inside)


async def partition(ctx: Context) -> Outcome:
    # Longer than the Kafka client's request timeout (30 s), so that the gateway has
    # to answer the sends it holds; the clients wait longer than that (60 s).
    seconds = 35.0
    out = Outcome(
        "partition",
        f"gateway and Kafka partitioned for {seconds:g} s (Kafka in a network namespace, "
        "a `tc` qdisc dropping every packet on both ends of the veth pair) under 10 senders",
        "no false acks: every acked message stored (acked lost/duplicated/reordered = 0); "
        "sends held by the partition are answered with errors; acks resume after it heals",
    )
    users = [f"n{i}" for i in range(10)]
    senders = Senders(timeout_s=65.0)
    tag = os.urandom(4).hex()
    async with namespace(tag) as ns:
        kafka = NamespacedKafka(ctx.services, ns)
        try:
            await kafka.start("kafka")
            stack = ctx.stack("partition")
            stack.services = kafka
            async with running(stack), _clients(stack, users, send_timeout_s=60.0) as clients:
                chat_of = await _groups(stack, clients, users, 5)
                async with anyio.create_task_group() as tg:
                    for u in users:
                        tg.start_soon(partial(senders.run, rate=5.0), clients[u], u, chat_of[u])
                    await anyio.sleep(4)
                    await ns.cut()
                    cut_at = time.monotonic()
                    acked_at_cut = senders.ledger.acked_count
                    try:
                        await anyio.sleep(seconds)
                    finally:
                        with anyio.CancelScope(shield=True):
                            await ns.heal()
                    healed = time.monotonic()
                    out.figures["qdisc"] = " ".join(ns.qdisc)
                    out.figures["acks_during_partition"] = sum(
                        1 for t in senders.ack_times if cut_at + 0.5 < t < healed
                    )
                    out.figures["errors_during_partition"] = sum(
                        1 for t in senders.error_times if cut_at < t < healed
                    )
                    await anyio.sleep(10)
                    senders.stop.set()
                out.figures["acks_before_partition"] = acked_at_cut
                after = [t for t in senders.ack_times if t >= healed]
                out.figures["first_ack_after_heal_s"] = (
                    round(min(after) - healed, 1) if after else "none in 10 s"
                )
                t = await _final(stack, senders.ledger)
        finally:
            with anyio.CancelScope(shield=True):
                await kafka.stop("kafka")
    out.figures.update(_tally_figures(t))
    out.figures["errors"] = dict(senders.ledger.errors())
    if t.unacked_stored:
        out.notes.append(
            f"{t.unacked_stored} of the {t.unacked} sends answered with an error were stored "
            "(once each): an error means 'maybe stored', as the SDK documents "
            "(retry with the same client_msg_id)"
        )
    out.passed = (
        t.ok
        and t.acked > acked_at_cut
        and bool(after)
        and out.figures["errors_during_partition"] > 0
    )
    return out
