"""The plan as text: the derived load, then one line per tier and what binds it."""

from __future__ import annotations

from chatcore.plan.model import Plan

__all__ = ["render"]


def render(result: Plan) -> str:
    f = result.figures
    lines = [
        "load",
        f"  connections at peak     {_n(f['connections'])}",
        f"  messages/s (avg, peak)  {_n(f['average_msg_s'])}, {_n(f['peak_msg_s'])}",
        f"  deliveries/s at peak    {_n(f['peak_deliveries_s'])}",
        f"  history                 {_n(f['stored_messages'])} messages, "
        f"{_bytes(f['history_bytes'])} with replicas",
        f"  Kafka disk              {_bytes(f['log_disk_bytes'])} with replicas",
        f"  Redis                   {_bytes(f['redis_memory_bytes'])}, "
        f"{_n(f['redis_ops_s'])} ops/s",
        f"  bandwidth (in, out)     {_bits(f['ingress_bits_s'])}, {_bits(f['egress_bits_s'])}",
        "",
        "fleet",
    ]
    for tier in result.tiers:
        others = ", ".join(
            f"{need.limit} {_n(need.exact)}" for need in tier.needs if need is not tier.binding
        )
        lines.append(
            f"  {tier.name:<16} {tier.count:>9,} {tier.unit:<10} bound by {tier.binding.limit}"
            f" ({tier.binding.detail}; {tier.utilization:.0%} used)"
            + (f"; other needs: {others}" if others else "")
        )
    first = result.binds_first
    lines += [
        "",
        f"binds first: {first.name}, by {first.binding.limit} "
        f"({first.utilization:.0%} of the planned capacity)",
    ]
    return "\n".join(lines)


def _n(value: float) -> str:
    for limit, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"


def _bytes(value: float) -> str:
    for limit, suffix in ((1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if value >= limit:
            return f"{value / limit:.3g} {suffix}"
    return f"{value:.0f} B"


def _bits(value: float) -> str:
    for limit, suffix in ((1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if value >= limit:
            return f"{value / limit:.3g} {suffix}"
    return f"{value:.0f} bit/s"
