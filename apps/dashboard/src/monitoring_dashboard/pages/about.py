"""About page: what the metrics mean, how they are computed, and how freshness is judged."""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from monitoring_dashboard.layout import TITLE

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/about", name="About", title=f"About · {TITLE}", order=2
)

SOURCES = """
A collector writes a snapshot of the host's counters (from `psutil`) to Redis every few
seconds. The **resource-monitor** function runs in the serverless runtime on each new snapshot
and writes its result as JSON to the output key (`REDIS_OUTPUT_KEY`). The runtime also appends
every result to the stream `<output key>:history` and records the latest failure in
`<output key>:error`. This dashboard only reads those keys.
"""

# (output key, formula, meaning)
METRICS = [
    (
        "percent-network-egress",
        "bytes_sent / (bytes_sent + bytes_recv) * 100",
        "Share of the interface's traffic since boot that went out (interface eth0, or every "
        "interface but lo when there is no eth0).",
    ),
    (
        "percent-memory-caching",
        "(cached + buffers) / total * 100",
        "Share of physical memory holding the page cache and buffers.",
    ),
    (
        "avg-util-cpu{N}-60sec",
        "mean of CPU N's cpu_percent samples with input time in (t - 60 s, t]",
        "CPU N's utilization over the last minute, t being the newest input's time.",
    ),
    (
        "timestamp",
        "the input's timestamp, unchanged",
        "When the collector took the snapshot, in the collector's local time.",
    ),
]

READING = """
* **updated N s ago** is the age of the newest output: the time the runtime wrote its newest
  history entry, or, with a runtime that writes no history, the time this page first saw the
  current output. The history graphs then hold what this page has seen since it was opened.
* **stale** appears when no new output arrived for more than three refresh periods.
* The function's **last error** is shown while it is newer than the last output.
* When Redis cannot be reached, the page says so, keeps the last data it received and
  recovers by itself once Redis is back.
* The heatmap gives every CPU one row, so a machine with many CPUs stays readable; the line
  chart draws the mean of all CPUs in bold. Times on the axes are UTC.
"""


FUNCTIONS = """
* Each function's **calls/s**, **errors** (the share of calls whose outcome is not success),
  **p50 / p95** call duration, **reloads** (every load, the first included, and how many
  failed), **role** (leader or standby) and **input age** come
  from its runtime's `/metrics` (the address it records in the function registry), read on every
  refresh and computed over the chosen time range as Prometheus would (`rate`,
  `histogram_quantile`). A cell's tooltip says what span they cover, or why there are none.
* With several replicas, the figures are those of the replica that registered last; Prometheus
  (the optional PodMonitor) and the Grafana dashboard in `docs/grafana/` see every replica.
* Every time on these pages is UTC. The Live page's "latest output" is when the runtime wrote it;
  the collector's own timestamp, which carries no zone, is shown beneath it as written.
"""


def layout(**_kwargs: Any) -> html.Div:
    rows = [
        html.Tr(
            [
                html.Td(html.Code(key), className="text-nowrap"),
                html.Td(html.Code(formula)),
                html.Td(meaning),
            ]
        )
        for key, formula, meaning in METRICS
    ]
    return html.Div(
        [
            html.H1("About", className="h3 mb-3"),
            html.H2("Where the numbers come from", className="h5"),
            dcc.Markdown(SOURCES),
            html.H2("The metrics", className="h5"),
            dbc.Table(
                [
                    html.Thead(html.Tr([html.Th("key"), html.Th("formula"), html.Th("meaning")])),
                    html.Tbody(rows),
                ],
                bordered=False,
                hover=True,
                responsive=True,
                class_name="bg-white",
            ),
            html.P(
                "A zero denominator gives 0. The counters are cumulative since boot, so the "
                "two percentages move slowly on a long-running host."
            ),
            html.H2("Reading the Live page", className="h5"),
            dcc.Markdown(READING),
            html.H2("Reading the Functions page", className="h5"),
            dcc.Markdown(FUNCTIONS),
        ],
        style={"maxWidth": "60rem"},
    )
