"""The Markdown report of a run: goals, ratios against the peers, one section per scenario."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.plots import draw_plots
from benchmarks.results import Point, Results
from benchmarks.stages import STEPS

__all__ = ["Goal", "goals", "ratios", "render_report"]

REPRODUCE = {
    "ids": "chatcore bench run ids",
    "idle": "chatcore bench run idle",
    "storm": "chatcore bench run storm",
    "direct": "chatcore bench run direct",
    "fanout": "chatcore bench run fanout --loadgen go",
    "latency": "chatcore bench run latency",
    "production": "scripts/services start && chatcore bench run production",
    "overload": "chatcore bench run overload --loadgen go",
}


@dataclass(frozen=True)
class Goal:
    """A target of the performance pass and how the run did against it."""

    name: str
    wanted: str
    measured: str
    met: bool | None
    """None: not measured in this run."""
    gap: str = ""


def _fmt(value: float, unit: str = "") -> str:
    if abs(value) >= 1e6:
        text = f"{value / 1e6:.2f} M"
    elif abs(value) >= 1e4:
        text = f"{value / 1e3:.1f} k"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text}{unit}".strip()


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _one(points: list[Point], **params: float | int | str) -> Point | None:
    for p in points:
        if all(p.params.get(k) == v for k, v in params.items()):
            return p
    return None


def _median(point: Point | None, metric: str) -> float | None:
    if point is None or metric not in point.median:
        return None
    return point.median[metric]


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return ours / theirs


def _peer(results: Results, target: str, ours: Point) -> Point | None:
    """``target``'s fanout point of ``ours``' group size, driven by the same load
    generator when there is one, else by any."""
    size = ours.params["group_size"]
    points = results.select("fanout", target)
    same = _one(points, group_size=size, loadgen=ours.params.get("loadgen", "python"))
    return same or _one(points, group_size=size)


def _us_per_delivery(point: Point | None) -> float | None:
    """Server CPU microseconds per delivery in the paced fanout round."""
    per_cpu = _median(point, "paced_delivered_per_cpu_s")
    return 1e6 / per_cpu if per_cpu else None


def _goal(
    name: str, wanted: str, found: list[tuple[str, float]], bound: float, *, most: bool = False,
    unit: str = "x", note: str = "",
) -> Goal:  # fmt: skip
    """A goal over labelled values: met when every value is at least ``bound`` (at
    most, with ``most``); the gap is the worst one's."""
    if not found:
        return Goal(name, wanted, "-", None)

    def show(v: float) -> str:
        return f"{v:.2f}x" if unit == "x" else f"{_fmt(v)}{unit}"

    measured = ", ".join(f"{label}: {show(v)}" if label else show(v) for label, v in found)
    label, worst = (max if most else min)(found, key=lambda t: t[1])
    met = worst <= bound if most else worst >= bound
    at = f" at {label}" if label else ""
    gap = ""
    if not met and worst:
        gap = f"{worst / bound:.1f}x over{at}" if most else f"{bound / worst:.1f}x short{at}"
    return Goal(name, wanted, measured + note, met, gap)


def goals(results: Results) -> list[Goal]:
    """The goals of issue 13 (the second performance pass), checked against this
    run's medians."""
    fanout = results.select("fanout", "chatcore-memory")

    def size(p: Point) -> str:
        return f"{p.params['group_size']}"

    vs_socketio, per_cpu, paced = [], [], []
    for p in fanout:
        peer = _one(results.select("fanout", "socketio"), group_size=p.params["group_size"])
        r = _ratio(_median(p, "delivered_per_s"), _median(peer, "delivered_per_s"))
        if r is not None:
            vs_socketio.append((size(p), r))
        centrifugo = _peer(results, "centrifugo", p)
        r = _ratio(_median(p, "delivered_per_cpu_s"), _median(centrifugo, "delivered_per_cpu_s"))
        if r is not None:
            per_cpu.append((size(p), r))
        r = _ratio(_us_per_delivery(p), _us_per_delivery(centrifugo))
        if r is not None:
            paced.append((size(p), r))
    out = [
        _goal("fanout delivered msg/s vs python-socketio", "≥ 3x", vs_socketio, 3),
        _goal("fanout deliveries per server CPU-second vs Centrifugo", "≥ 0.25x", per_cpu, 0.25),
        _goal(
            "fanout server CPU per delivery at an equal paced load vs Centrifugo",
            "≤ 2x",
            paced,
            2,
            most=True,
        ),
    ]
    for target, bound in (("chatcore-memory", 2.0), ("chatcore-sqlite", 1.0)):
        r = _ratio(
            _median(_one(results.select("direct", target)), "accepted_per_s"),
            _median(_one(results.select("direct", "socketio")), "accepted_per_s"),
        )
        found = [] if r is None else [("", r)]
        out.append(
            _goal(f"1:1 accepted/s vs python-socketio, {target}", f"≥ {bound:g}x", found, bound)
        )
    for target, ms in (("chatcore-memory", 15.0), ("chatcore-sqlite", 30.0)):
        half = _one(results.select("latency", target), fraction=0.5)
        p99 = _median(half, "p99_ms")
        found = [] if p99 is None else [(f"{_median(half, 'offered_per_s') or 0:.0f} msg/s", p99)]
        out.append(
            _goal(
                f"p99 at half of max load, {target}",
                f"≤ {ms:g} ms",
                found,
                ms,
                most=True,
                unit=" ms",
            )
        )
    idle = results.select("idle", "chatcore-memory")
    found, note = [], ""
    if idle:
        biggest = max(idle, key=lambda p: int(p.params["connections"]))
        found = [
            (f"{int(biggest.median['connected'])} connections", biggest.median["kib_per_conn"])
        ]
        limit = results.machine.get("fd_hard_limit", "?")
        note = " (quick sizes)" if results.quick else f" (open-file hard limit {limit})"
    out.append(
        _goal(
            "memory per idle connection", "≤ 12 KiB", found, 12, most=True, unit=" KiB", note=note
        )
    )
    storms = []
    for p in results.select("storm", "chatcore-memory"):
        n = p.params["connections"]
        peer = _one(results.select("storm", "uvicorn"), connections=n)
        r = _ratio(_median(p, "reconnects_per_s"), _median(peer, "reconnects_per_s"))
        if r is not None:
            storms.append((f"{n} clients", r))
    out.append(
        _goal("reconnects/s in a storm, hello + sync, vs bare uvicorn", "≥ 0.5x", storms, 0.5)
    )
    top = _one(results.select("production", "chatcore-production"), fraction=1.0)
    sustained = _median(top, "max_per_s")
    found = [] if sustained is None else [("", sustained)]
    out.append(_goal("real stack: sustained msg/s", "≥ 5,000/s", found, 5000, unit="/s"))
    half = _one(results.select("production", "chatcore-production"), fraction=0.5)
    p99 = _median(half, "p99_ms")
    found = [] if p99 is None else [("", p99)]
    out.append(
        _goal("real stack: p99 at half of it", "≤ 100 ms", found, 100, most=True, unit=" ms")
    )
    ids = _median(_one(results.select("ids", "chatcore")), "ids_per_s")
    found = [] if ids is None else [("", ids)]
    out.append(_goal("Snowflake ids/s on one thread", "≥ 2 M/s", found, 2e6, unit="/s"))
    return out


def ratios(results: Results) -> list[tuple[str, str, float]]:
    """(what, metric, chatcore / peer) for every comparison this run has both sides of."""
    out: list[tuple[str, str, float]] = []

    def add(what: str, metric: str, ours: Point | None, theirs: Point | None) -> None:
        r = _ratio(_median(ours, metric), _median(theirs, metric))
        if r is not None:
            out.append((what, metric, r))

    for p in results.select("fanout", "chatcore-memory"):
        size = p.params["group_size"]
        loadgen = p.params.get("loadgen", "python")
        by = "" if loadgen == "python" else f" ({loadgen} load gen)"
        peer = _one(results.select("fanout", "socketio"), group_size=size)
        add(f"fanout, groups of {size}{by}: chatcore / python-socketio",
            "delivered_per_s", p, peer)  # fmt: skip
        centrifugo = _peer(results, "centrifugo", p)
        for metric in ("delivered_per_s", "delivered_per_cpu_s", "p99_ms"):
            add(f"fanout, groups of {size}{by}: chatcore / Centrifugo",
                metric, p, centrifugo)  # fmt: skip
        r = _ratio(_us_per_delivery(p), _us_per_delivery(centrifugo))
        if r is not None:
            what = f"fanout, groups of {size}{by}, paced: chatcore / Centrifugo"
            out.append((what, "server CPU µs per delivery", r))
    for target in ("chatcore-memory", "chatcore-sqlite"):
        for fraction in (0.5, 1.0):
            ours = _one(results.select("latency", target), fraction=fraction)
            peer = _one(results.select("latency", "socketio"), fraction=fraction)
            label = "maximum" if fraction == 1.0 else f"{fraction:.0%} of each one's maximum"
            metric = "max_per_s" if fraction == 1.0 else "p99_ms"
            add(f"direct chats, {label}: {target} / python-socketio", metric, ours, peer)
    for target in ("chatcore-memory", "chatcore-sqlite"):
        add(
            f"1:1 throughput: {target} / python-socketio",
            "accepted_per_s",
            _one(results.select("direct", target)),
            _one(results.select("direct", "socketio")),
        )
    for p in results.select("idle", "chatcore-memory"):
        n = p.params["connections"]
        peer = _one(results.select("idle", "websockets"), connections=n)
        add(f"idle connections ({n}): chatcore / bare websockets", "kib_per_conn", p, peer)
        floor = _one(results.select("idle", "uvicorn"), connections=n)
        add(f"idle connections ({n}): chatcore / bare ASGI on uvicorn", "kib_per_conn", p, floor)
    for p in results.select("storm", "chatcore-memory"):
        n = p.params["connections"]
        peer = _one(results.select("storm", "uvicorn"), connections=n)
        add(f"reconnect storm ({n}): chatcore / bare ASGI on uvicorn", "reconnects_per_s", p, peer)
    add(
        "Snowflake ids/s: chatcore / snowflake-id",
        "ids_per_s",
        _one(results.select("ids", "chatcore")),
        _one(results.select("ids", "snowflake-id")),
    )
    return out


def _runs(p: Point) -> str:
    return str(len(p.runs))


def _section_ids(results: Results) -> list[str]:
    rows = [
        (
            p.target,
            _fmt(p.median["ids_per_s"], "/s"),
            f"{p.median.get('exhausted', 0.0):.0f} of {p.params.get('count', '?')}",
            _runs(p),
        )
        for p in results.select("ids")
    ]
    header = ("generator", "ids/s (median)", "calls that returned no id", "runs")
    lines = _table(header, rows)
    lines += [
        "",
        "`snowflake-id` returns None when a millisecond's 4096 ids are used up; those "
        "calls are not counted as ids. chatcore's generator waits for the next "
        "millisecond instead. The layout's ceiling is 4.096 M ids/s per node id.",
    ]
    return lines


def _section_idle(results: Results) -> list[str]:
    rows = []
    for p in sorted(results.select("idle"), key=lambda p: (int(p.params["connections"]), p.target)):
        m = p.median
        rows.append(
            (
                p.target,
                str(p.params["connections"]),
                f"{m['connected']:.0f}",
                f"{m['rss_base_mib']:.0f}",
                f"{m['rss_mib']:.0f}",
                f"{m['kib_per_conn']:.1f}",
                f"{m['connects_per_s']:.0f}",
                _runs(p),
            )
        )
    header = (
        "server", "connections", "open", "RSS before (MiB)", "RSS after (MiB)",
        "KiB / connection", "connects/s", "runs",
    )  # fmt: skip
    return _table(header, rows)


def _server(p: Point) -> str:
    """The target, and the load generator that drove it unless it was the Python one."""
    loadgen = p.params.get("loadgen", "python")
    return p.target if loadgen == "python" else f"{p.target} ({loadgen} load gen)"


def _section_storm(results: Results) -> list[str]:
    rows = []
    points = sorted(results.select("storm"), key=lambda p: (int(p.params["connections"]), p.target))
    for p in points:
        m = p.median
        rows.append(
            (
                p.target,
                str(p.params["connections"]),
                f"{m['connects_per_s']:.0f}",
                f"{m['restart_s']:.1f}",
                f"{m['back_s']:.2f}",
                f"{m['reconnects_per_s']:.0f}",
                f"{m['p50_ms']:.0f} / {m['p99_ms']:.0f}",
                f"{m['failed']:.0f}",
                _runs(p),
            )
        )
    header = (
        "server", "clients", "first connects/s", "restart (s)", "all back after (s)",
        "reconnects/s", "per client p50 / p99 (ms)", "not back", "runs",
    )  # fmt: skip
    notes = [
        "",
        "Clients: the Go load generator, hello and sync per connection (the bare uvicorn "
        "peer: the handshake only); the target is killed and started again on its port, "
        "every client retries every 50 ms without jitter. *All back after*: from the new "
        "server listening to the last client synced; *per client*: from its disconnect to "
        "synced, the restart included.",
    ]
    return _table(header, rows) + notes


def _load_row(p: Point, first: str) -> tuple[str, ...]:
    m = p.median
    return (
        first,
        _server(p),
        _fmt(m["accepted_per_s"]),
        _fmt(m["delivered_per_s"]),
        f"{m['p50_ms']:.1f}",
        f"{m['p99_ms']:.1f}",
        f"{m['p999_ms']:.1f}",
        f"{m['server_cpu']:.0%}",
        f"{m['loadgen_cpu']:.0%}",
        f"{m.get('others_cpu', 0.0):.0%}",
        _runs(p),
    )


_LOAD_HEADER = (
    "accepted/s", "delivered/s", "p50 ms", "p99 ms", "p99.9 ms",
    "server CPU", "load gen CPU", "other CPU", "runs",
)  # fmt: skip


def _section_direct(results: Results) -> list[str]:
    rows = [_load_row(p, str(p.params["pairs"])) for p in results.select("direct")]
    return _table(("pairs", "server", *_LOAD_HEADER), rows)


def _section_fanout(results: Results) -> list[str]:
    points = sorted(
        results.select("fanout"),
        key=lambda p: (int(p.params["group_size"]), p.target, str(p.params.get("loadgen", ""))),
    )
    rows = [_load_row(p, str(p.params["group_size"])) for p in points]
    lines = _table(("group size", "server", *_LOAD_HEADER), rows)
    side = []
    for p in points:
        m = p.median
        side.append(
            (
                str(p.params["group_size"]),
                p.target,
                str(p.params.get("loadgen", "python")),
                _fmt(m["delivered_per_s"]),
                _fmt(m.get("delivered_per_cpu_s", 0.0)),
                f"{m['p99_ms']:.1f}",
                f"{m['server_cpu']:.0%}",
                f"{m['loadgen_cpu']:.0%}",
            )
        )
    lines += ["", "Side by side (deliveries per server CPU-second: what one core delivers):", ""]
    header = (
        "group size", "server", "load generator", "delivered/s",
        "delivered / server CPU-s", "p99 ms", "server CPU", "load gen CPU",
    )  # fmt: skip
    lines += _table(header, side)
    paced = [p for p in points if "paced_delivered_per_cpu_s" in p.median]
    if not paced:
        return lines
    rows = []
    for p in paced:
        m = p.median
        us = _us_per_delivery(p)
        rows.append(
            (
                str(p.params["group_size"]),
                p.target,
                str(p.params.get("loadgen", "python")),
                _fmt(m["paced_offered_per_s"] * float(p.params["group_size"])),
                _fmt(m["paced_delivered_per_s"]),
                "-" if us is None else f"{us:.1f}",
                f"{m['paced_p99_ms']:.1f}",
                f"{m['paced_server_cpu']:.0%}",
            )
        )
    lines += ["", "At an equal paced load (the same deliveries per second offered to each):", ""]
    header = (
        "group size", "server", "load generator", "offered deliveries/s", "delivered/s",
        "server CPU µs / delivery", "p99 ms", "server CPU",
    )  # fmt: skip
    return lines + _table(header, rows)


def _fraction_label(p: Point) -> str:
    f = float(p.params["fraction"])
    return "max (flat out)" if f == 1.0 else f"{f:.0%} ({p.median['offered_per_s']:.0f}/s)"


def _section_latency(results: Results, scenario: str) -> list[str]:
    points = sorted(
        results.select(scenario), key=lambda p: (p.target, float(p.params.get("fraction", 0)))
    )
    rows = [_load_row(p, _fraction_label(p)) for p in points if "fraction" in p.params]
    return _table(("offered", "server", *_LOAD_HEADER), rows)


def _section_overload(results: Results) -> list[str]:
    points = sorted(
        results.select("overload"), key=lambda p: (p.target, float(p.params["multiple"]))
    )
    rows = []
    for p in points:
        m, multiple = p.median, float(p.params["multiple"])
        rate = f"{multiple:g}x ({m['offered_per_s']:.0f}/s)"
        offered = "max (flat out)" if multiple == 0 else rate
        rows.append(
            (
                offered,
                p.target,
                _fmt(m["accepted_per_s"]),
                _fmt(m.get("refused_per_s", 0.0)),
                _fmt(m["delivered_per_s"]),
                f"{m['p50_ms']:.1f}",
                f"{m['p99_ms']:.1f}",
                f"{m['server_cpu']:.0%}",
                _runs(p),
            )
        )
    header = ("offered", "server", "accepted/s", "refused/s", "delivered/s", "p50 ms",
              "p99 ms", "server CPU", "runs")  # fmt: skip
    size = points[0].params.get("group_size", "?") if points else "?"
    note = [
        f"Groups of {size}; offered load as a multiple of the flat-out maximum sustained "
        "rate of the same server. Refused: answered `overloaded`, dropped by the load "
        "generator (not retried). Latency of the delivered messages, from the send that "
        "was accepted to its arrival; delivered/s counts every member's copy.",
        "",
    ]
    return note + _table(header, rows)


def _section_kafka(results: Results) -> list[str]:
    raw = _one(results.select("production", "aiokafka"))
    top = _one(results.select("production", "chatcore-production"), fraction=1.0)
    if raw is None:
        return []
    lines = [
        "",
        f"aiokafka on the same broker (idempotent, acks=all, 300-byte records, "
        f"median of {_runs(raw)}): **{_fmt(raw.median['pipelined_per_s'], '/s')}** pipelined, "
        f"**{_fmt(raw.median['sequential_per_s'], '/s')}** one awaited send at a time.",
    ]
    sustained = _median(top, "max_per_s")
    if sustained is not None:
        share = sustained / raw.median["pipelined_per_s"]
        lines.append(
            f"chatcore sustains {sustained:.0f} messages/s (accepted and delivered to both "
            f"members): {share:.2%} of the raw pipelined rate, "
            f"{sustained / raw.median['sequential_per_s']:.3f}x the one-at-a-time rate."
        )
    return lines


def _stage_rows(m: dict[str, float]) -> list[tuple[str, ...]]:
    """The steps of one round: exact mean, approximate median (difference of the two
    stages' medians since acceptance), and the end stage's quantiles since acceptance
    (a difference of two p99s means nothing: the slowest messages differ per stage)."""
    rows: list[tuple[str, ...]] = []
    for name, start, end in STEPS:
        if f"stage_{end}_count" not in m or (start and f"stage_{start}_count" not in m):
            continue

        def step(stat: str, start: str | None = start, end: str = end) -> float:
            return m[f"stage_{end}_{stat}"] - (m[f"stage_{start}_{stat}"] if start else 0.0)

        rows.append(
            (
                name,
                f"{step('mean_ms'):.1f}",
                f"{step('p50_ms'):.1f}",
                f"{m[f'stage_{end}_p50_ms']:.1f}",
                f"{m[f'stage_{end}_p99_ms']:.1f}",
                f"{m[f'stage_{end}_count']:.0f}",
            )
        )
    return rows


_STAGE_HEADER = (
    "step", "mean ms", "≈ p50 ms", "p50 ms since accepted", "p99 ms since accepted", "messages",
)  # fmt: skip


def _section_stages(results: Results) -> list[str]:
    """Where the time goes, one table per round (from the servers' /metrics)."""
    rounds = [
        (f"{p.target}, {_fraction_label(p)}", p)
        for p in sorted(
            results.select("production", "chatcore-production"),
            key=lambda p: -float(p.params.get("fraction", 0)),
        )
    ] + [
        (f"gateway + {p.params['workers']} workers, flat out", p)
        for p in results.select("production", "chatcore-workers")
    ]
    lines: list[str] = []
    for title, p in rounds:
        rows = _stage_rows(p.median)
        if not rows:
            continue
        lines += ["", f"**{title}**", "", *_table(_STAGE_HEADER, rows)]
    if not lines:
        return []
    return [
        "",
        "### Where the time goes",
        "",
        "From `chatcore_stage_latency_seconds` (every chatcore process's `/metrics`, "
        "scraped before and after each round; bucket deltas summed over the processes). "
        "Each stage is timed from the message's acceptance: a step's mean is exact "
        "(the difference of the two stages' means), its ≈ p50 the difference of their "
        "medians (approximate); p50 and p99 since acceptance are the step's end stage's "
        "own. Quantiles are as fine as the histogram's buckets (1, 2.5, 5, 10, 25, 50, "
        "100, 250 ms, …). Medians over the runs.",
        *lines,
    ]


def _section_workers(results: Results) -> list[str]:
    points = sorted(
        results.select("production", "chatcore-workers"), key=lambda p: float(p.params["workers"])
    )
    if not points:
        return []
    rows = []
    for p in points:
        m = p.median
        rows.append(
            (
                str(p.params["workers"]),
                _fmt(m["accepted_per_s"]),
                _fmt(m["delivered_per_s"]),
                _fmt(m["max_per_s"]),
                f"{m['p50_ms']:.1f}",
                f"{m['p99_ms']:.1f}",
                f"{m['server_cpu']:.0%}",
                f"{m['workers_cpu']:.0%}",
                f"{m['busiest_worker_cpu']:.0%}",
                f"{m['loadgen_cpu']:.0%}",
                f"{m.get('others_cpu', 0.0):.0%}",
                _runs(p),
            )
        )
    header = (
        "workers", "accepted/s", "delivered/s", "sustained/s", "p50 ms", "p99 ms",
        "gateway CPU", "workers CPU", "busiest worker", "load gen CPU", "other CPU", "runs",
    )  # fmt: skip
    return [
        "",
        "### Gateway and worker processes",
        "",
        "`chatcore init`, one `chatcore gateway` (pinned as every target, rate limits "
        "lifted) and 1, 2 or 4 `chatcore worker` processes (every role, not pinned), flat "
        "out. Sustained: accepted and delivered to both members. CPU in cores; on a "
        "machine of 2 cores the workers share them with the gateway and the load "
        "generator, so more workers cannot scale here: the figure shows the cost of the "
        "split, not its ceiling.",
        "",
        *_table(header, rows),
    ]


def _section_profiles(results: Results) -> list[str]:
    lines: list[str] = []
    for prof in results.profiles:
        lines += ["", f"**{prof.scenario}, {prof.target}** ({prof.samples} samples)", ""]
        rows = [(name.replace("|", "/"), f"{pct:.1f}%") for name, pct in prof.self_top[:12]]
        lines += _table(("function (self time)", "share"), rows)
        lines.append("")
        rows = [(name.replace("|", "/"), f"{pct:.1f}%") for name, pct in prof.inclusive_top[:15]]
        lines += _table(("function (inclusive)", "share"), rows)
    return lines


def render_report(results: Results, folder: Path) -> Path:
    """Write ``folder/report.md`` and its plots; the report's path."""
    plots = draw_plots(results, folder)
    m = results.machine
    lines = [
        "# chatcore benchmarks",
        "",
        f"Run {results.started}{' (quick sizes)' if results.quick else ''}, "
        f"medians of up to {results.repeats} runs per point. "
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores, "
        f"{m.get('memory_gib', '?')} GiB, Linux {m.get('kernel', '?')}, "
        f"Python {m.get('python', '?')}. Pinning: {results.pinning}. "
        f"Load generator: {m.get('load generator', 'python')}.",
        "",
        "## Goals",
        "",
    ]
    rows = [
        (
            g.name,
            g.wanted,
            g.measured,
            "-" if g.met is None else ("met" if g.met else "missed"),
            g.gap,
        )
        for g in goals(results)
    ]
    lines += _table(("goal", "wanted", "measured", "", "by how much"), rows)
    found = ratios(results)
    if found:
        lines += ["", "## Ratios (chatcore / peer, medians)", ""]
        lines += _table(
            ("comparison", "metric", "ratio"),
            [(what, metric, f"{r:.2f}") for what, metric, r in found],
        )
    sections = [
        ("ids", "Snowflake ids per second (one thread)", _section_ids(results)),
        ("idle", "Memory per idle connection", _section_idle(results)),
        ("storm", "Reconnect storm after a restart", _section_storm(results)),
        ("direct", "1:1 throughput", _section_direct(results)),
        ("fanout", "Group fanout", _section_fanout(results)),
        ("latency", "Latency at fixed offered load", _section_latency(results, "latency")),
        (
            "production",
            "Real stack: Kafka + Cassandra + Redis",
            _section_latency(results, "production")
            + _section_kafka(results)
            + _section_stages(results)
            + _section_workers(results),
        ),
        ("overload", "Past saturation: admission follows delivery", _section_overload(results)),
    ]
    for scenario, title, body in sections:
        if not results.select(scenario):
            continue
        lines += ["", f"## {title}", "", f"Reproduce: `{REPRODUCE[scenario]}`", ""]
        if scenario in plots:
            lines += [f"![{title}]({plots[scenario]})", ""]
        lines += body
        extra = f"{scenario}-workers"
        if extra in plots:
            lines += ["", f"![{title}: worker processes]({plots[extra]})"]
    if results.profiles:
        lines += ["", "## Profiles (py-spy, server process)"]
        lines += _section_profiles(results)
    lines += ["", "## Software", ""]
    lines += _table(
        ("package", "version"),
        [(k.removeprefix("pkg:"), v) for k, v in m.items() if k.startswith("pkg:")],
    )
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
