"""The two Grafana dashboards, built with Grafana's typed SDK and written as JSON.

    python examples/deploy/monitoring/dashboards.py      # rewrites the two JSON files

Real-time health (connections, errors, lag, presence, stores, processes) and message
delivery (rates, latencies per stage, receipts, the offline queue, loss). The SDK
(``grafana-foundation-sdk``, generated from Grafana's own dashboard schema) is in the
dev dependencies; the JSON files are what you import into Grafana.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as gd
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

HERE = Path(__file__).parent
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Graph:
    """One panel: a title, its queries (PromQL, legend) and how to show them."""

    title: str
    queries: tuple[tuple[str, str], ...]
    unit: str = "short"
    description: str = ""
    big_number: bool = False
    width: int = 8


def p99(metric: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.99, sum by ({labels}) (rate({metric}_bucket[{RATE}])))"


HEALTH = (
    "chatcore-health",
    "chatcore: real-time health",
    {
        "Gateways": (
            Graph("Connections", (("sum(chatcore_connections)", "connections"),), big_number=True),
            Graph(
                "Connections per gateway",
                (("sum by (instance) (chatcore_connections)", "{{instance}}"),),
            ),
            Graph(
                "Closes by code",
                (
                    (
                        f"sum by (code) (rate(chatcore_connection_closes_total[{RATE}]))",
                        "{{code}}",
                    ),
                ),
                unit="ops",
                description="4008: slow consumer; 1001: drain; 4401: expired token.",
            ),
            Graph(
                "Errors by code",
                ((f"sum by (code) (rate(chatcore_request_errors_total[{RATE}]))", "{{code}}"),),
                unit="ops",
            ),
        ),
        "Pipeline": (
            Graph(
                "Log lag per stage",
                (("max by (topic, group) (chatcore_log_lag_records)", "{{group}}"),),
                description="Records appended but not committed by the stage. Alert: 10 k.",
            ),
            Graph(
                "Presence update p99",
                ((p99("chatcore_presence_update_seconds"), "p99"),),
                unit="s",
            ),
            Graph(
                "Store write p99",
                ((p99("chatcore_store_write_seconds", "store"), "{{store}}"),),
                unit="s",
            ),
        ),
        "Processes": (
            Graph(
                "CPU",
                ((f"rate(process_cpu_seconds_total[{RATE}])", "{{instance}}"),),
                unit="percentunit",
            ),
            Graph(
                "Resident memory",
                (("process_resident_memory_bytes", "{{instance}}"),),
                unit="bytes",
            ),
            Graph("Open files", (("process_open_fds", "{{instance}}"),)),
        ),
    },
)

DELIVERY = (
    "chatcore-delivery",
    "chatcore: message delivery",
    {
        "Throughput": (
            Graph(
                "Accepted",
                ((f"sum(rate(chatcore_messages_accepted_total[{RATE}]))", "accepted/s"),),
                unit="ops",
                big_number=True,
            ),
            Graph(
                "Delivered",
                ((f"sum(rate(chatcore_messages_delivered_total[{RATE}]))", "delivered/s"),),
                unit="ops",
                big_number=True,
            ),
            Graph(
                "Loss rate",
                (
                    (
                        "sum(rate(chatcore_sequence_gaps_total[5m]))"
                        " / clamp_min(sum(rate(chatcore_messages_accepted_total[5m])), 1e-9)",
                        "lost / accepted",
                    ),
                ),
                unit="percentunit",
                description="Seqs found missing per message accepted. Alert: 0.001 %.",
                big_number=True,
            ),
        ),
        "Latency": (
            Graph(
                "Delivery latency",
                (
                    (
                        "histogram_quantile(0.5, sum by (le) "
                        f"(rate(chatcore_delivery_latency_seconds_bucket[{RATE}])))",
                        "p50",
                    ),
                    (p99("chatcore_delivery_latency_seconds"), "p99"),
                ),
                unit="s",
                description="Acceptance to the first push on a gateway. Alert: p99 > 1 s.",
                width=12,
            ),
            Graph(
                "Stage latency p99 (since acceptance)",
                ((p99("chatcore_stage_latency_seconds", "stage"), "{{stage}}"),),
                unit="s",
                description="logged, sequenced, stored, pushed: each counted from acceptance.",
                width=12,
            ),
        ),
        "Receipts and offline": (
            Graph(
                "Receipt delivery p99",
                ((p99("chatcore_receipt_delivery_seconds"), "p99"),),
                unit="s",
                width=12,
            ),
            Graph(
                "Offline notifications pending",
                (("sum(chatcore_offline_pending)", "pending"),),
                width=12,
            ),
        ),
    },
)


def panel(graph: Graph, panel_id: int) -> stat.Panel | timeseries.Panel:
    built: stat.Panel | timeseries.Panel = stat.Panel() if graph.big_number else timeseries.Panel()
    built.id(panel_id).title(graph.title).unit(graph.unit).datasource(DATASOURCE)
    built.span(graph.width).height(7)
    if graph.description:
        built.description(graph.description)
    for ref, (expr, legend) in zip("ABCDEFGH", graph.queries, strict=False):
        query = prometheus.Dataquery().ref_id(ref).expr(expr).legend_format(legend)
        built.with_target(query.datasource(DATASOURCE))
    return built


def build(uid: str, title: str, rows: dict[str, tuple[Graph, ...]]) -> dict[str, object]:
    board = (
        gd.Dashboard(title)
        .uid(uid)
        .tags(["chatcore"])
        .refresh("30s")
        .time("now-1h", "now")
        .with_variable(gd.DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    panel_id = 0
    for row, graphs in rows.items():
        panel_id += 1
        board.with_row(gd.Row(row).id(panel_id))
        for graph in graphs:
            panel_id += 1
            board.with_panel(panel(graph, panel_id))
    data: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return data


def render(uid: str, title: str, rows: dict[str, tuple[Graph, ...]]) -> str:
    return json.dumps(build(uid, title, rows), indent=2, sort_keys=True) + "\n"


DASHBOARDS = {f"{spec[0]}.json": spec for spec in (HEALTH, DELIVERY)}


def main() -> None:
    for name, spec in DASHBOARDS.items():
        (HERE / name).write_text(render(*spec))
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
