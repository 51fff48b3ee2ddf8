"""Pure figure builders: data in, Plotly figure (as a plain dict) out.

Plain dicts rather than `go.Figure`: with 64 CPUs, building and validating the graph objects
took longer than the whole refresh budget, and Dash sends the same JSON either way.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from monitoring_dashboard.output_keys import CACHING, EGRESS, cpu_index, cpu_label, display_order
from monitoring_dashboard.reading import Point
from monitoring_dashboard.resample import SERIES_COLUMNS, Columns, Grid, columns, grid

Figure = dict[str, Any]

EGRESS_COLOR = "#0d6efd"
CACHING_COLOR = "#198754"
CPU_COLOR = "#6f42c1"
OTHER_COLOR = "#6c757d"
MEAN_COLOR = "#212529"
# Up to this many CPUs each line gets a color and a legend entry; beyond, the heatmap reads better.
LEGEND_MAX_CPUS = 16
QUALITATIVE = [
    "#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1",
    "#20c997", "#d63384", "#0dcaf0", "#6c757d", "#ffc107",
]  # fmt: skip
# ColorBrewer YlOrRd, light for idle and dark red for busy.
HEAT = [[0.0, "#ffffcc"], [0.25, "#fed976"], [0.5, "#fd8d3c"], [0.75, "#e31a1c"], [1.0, "#800026"]]
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
HOVER_TIME = "%Y-%m-%d %H:%M:%S UTC"


def escape(text: str) -> str:
    """Make text from Redis show literally: Plotly reads a subset of HTML in labels."""
    return html.escape(text, quote=False)


def empty_figure(message: str, height: int = 260) -> Figure:
    """A blank figure that states why there is nothing to draw."""
    hidden = {"visible": False}
    return {
        "data": [],
        "layout": _layout(
            height,
            uirevision="empty",
            xaxis=hidden,
            yaxis=hidden,
            annotations=[
                {
                    "text": escape(message),
                    "showarrow": False,
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "font": {"size": 14, "color": OTHER_COLOR},
                }
            ],
        ),
    }


def series_figures(points: Sequence[Point], metrics: Sequence[tuple[str, str]]) -> list[Figure]:
    """A series figure per (name, color); many points are first put on shared even columns."""
    picked = columns(points, SERIES_COLUMNS) if len(points) > SERIES_COLUMNS else None
    return [series_figure(points, name, color, picked) for name, color in metrics]


def series_figure(
    points: Sequence[Point],
    name: str,
    color: str,
    picked: Columns | None = None,
    height: int = 260,
) -> Figure:
    """One metric over time as a filled line: every point, or the picked columns if given."""
    x: dict[str, Any]
    ys: list[float | None]
    on_grid = grid(picked, [name], decimals=3)
    if on_grid is not None:
        ys = on_grid.rows[0]
        x = {"x0": on_grid.x0_ms, "dx": on_grid.dx_ms}
    else:
        kept = [point for point in points if name in point.values]
        ys = [round(point.values[name], 3) for point in kept]
        x = {"x": [point.at_ms for point in kept]}
    if not any(value is not None for value in ys):
        return empty_figure(f"No history of {name} yet", height)
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(ys) < 3 else "lines",
        **x,
        "y": ys,
        "name": escape(name),
        "line": {"color": color, "width": 2},
        "fill": "tozeroy",
        "fillcolor": _translucent(color),
        "hovertemplate": "%{y:.3f} %<extra></extra>",
    }
    return {
        "data": [trace],
        "layout": _layout(
            height,
            xaxis=_time_axis(),
            yaxis={"ticksuffix": " %", "rangemode": "tozero", "gridcolor": "#e9ecef"},
            showlegend=False,
        ),
    }


def number_series_figure(
    name: str, times_ms: Sequence[int], values: Sequence[float | None], height: int = 220
) -> Figure:
    """Any numeric key of a function's output over time, as a plain line."""
    if not any(value is not None for value in values):
        return empty_figure(f"No history of {name} yet", height)
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(values) < 30 else "lines",
        "x": list(times_ms),
        "y": list(values),
        "name": escape(name),
        "connectgaps": False,
        "line": {"color": EGRESS_COLOR, "width": 2},
        "hovertemplate": "%{y}<extra></extra>",
    }
    return {
        "data": [trace],
        "layout": _layout(
            height, xaxis=_time_axis(), yaxis={"gridcolor": "#e9ecef"}, showlegend=False
        ),
    }


def cpu_figure_height(cpu_count: int) -> int:
    """Height of the per-CPU graphs: enough for one heatmap row per CPU."""
    return max(260, min(640, 60 + 8 * cpu_count))


def cpu_lines_figure(grid: Grid | None) -> Figure:
    """Each CPU's 60 s moving average as a line, plus their mean in bold."""
    if grid is None or not grid.names:
        return empty_figure("No per-CPU averages yet")
    height = cpu_figure_height(len(grid.names))
    many = len(grid.names) > LEGEND_MAX_CPUS
    traces: list[dict[str, Any]] = []
    for position, (name, row) in enumerate(zip(grid.names, grid.rows, strict=True)):
        color = CPU_COLOR if many else QUALITATIVE[position % len(QUALITATIVE)]
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x0": grid.x0_ms,
                "dx": grid.dx_ms,
                "y": row,
                "name": escape(cpu_label(name)),
                "line": {"color": color, "width": 1},
                "opacity": 0.35 if many else 0.9,
                "hovertemplate": "%{y:.1f} %",
            }
        )
    if len(grid.names) > 1:
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "x0": grid.x0_ms,
                "dx": grid.dx_ms,
                "y": _column_means(grid.rows),
                "name": "mean of all CPUs",
                "line": {"color": MEAN_COLOR, "width": 3},
                "hovertemplate": "%{y:.1f} %",
            }
        )
    return {
        "data": traces,
        "layout": _layout(
            height,
            xaxis=_time_axis(),
            yaxis={"ticksuffix": " %", "range": [0, 100], "gridcolor": "#e9ecef"},
            showlegend=not many,
            # Above the plot, where it cannot collide with the time axis.
            legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
            hovermode="closest",
        ),
    }


def cpu_heatmap_figure(grid: Grid | None) -> Figure:
    """All CPUs at a glance: one row per CPU, color = 60 s moving average."""
    if grid is None or not grid.names:
        return empty_figure("No per-CPU averages yet")
    count = len(grid.names)
    return {
        "data": [
            {
                "type": "heatmap",
                "x0": grid.x0_ms,
                "dx": grid.dx_ms,
                "y": [escape(cpu_label(name)) for name in grid.names],
                "z": grid.rows,
                "zmin": 0,
                "zmax": 100,
                "colorscale": HEAT,
                "colorbar": {"title": {"text": "%"}, "thickness": 12, "len": 0.9},
                "ygap": 1 if count <= 32 else 0,
                "hovertemplate": "%{y}<br>%{x|" + HOVER_TIME + "}<br>%{z:.1f} %<extra></extra>",
            }
        ],
        "layout": _layout(
            cpu_figure_height(count),
            xaxis=_time_axis(),
            yaxis={"autorange": "reversed", "type": "category", "tickfont": {"size": 10}},
        ),
    }


def latest_bar_figure(values: Mapping[str, float], height: int = 360) -> Figure:
    """The latest output's values as bars, as the original dashboard showed them."""
    if not values:
        return empty_figure("The latest output holds no numbers", height)
    names = display_order(values)
    colors = [_bar_color(name) for name in names]
    return {
        "data": [
            {
                "type": "bar",
                "x": [escape(name) for name in names],
                "y": [round(values[name], 3) for name in names],
                "marker": {"color": colors},
                "hovertemplate": "%{x}<br>%{y:.3f}<extra></extra>",
            }
        ],
        "layout": _layout(
            height,
            xaxis={
                "type": "category",
                "tickangle": -90 if len(names) > 12 else -30,
                "tickfont": {"size": 10 if len(names) > 24 else 12},
                "automargin": True,
            },
            yaxis={"gridcolor": "#e9ecef", "rangemode": "tozero"},
            bargap=0.15,
        ),
    }


def _bar_color(name: str) -> str:
    if name == EGRESS:
        return EGRESS_COLOR
    if name == CACHING:
        return CACHING_COLOR
    return CPU_COLOR if cpu_index(name) is not None else OTHER_COLOR


def _column_means(rows: list[list[float | None]]) -> list[float | None]:
    means: list[float | None] = []
    for column in zip(*rows, strict=True):
        present = [value for value in column if value is not None]
        means.append(round(sum(present) / len(present), 2) if present else None)
    return means


def _time_axis() -> dict[str, Any]:
    # Plotly reads numbers on a date axis as ms since the epoch and shows them in UTC (the
    # page says so in each graph's header; an axis title would collide with the date line).
    return {
        "type": "date",
        "hoverformat": HOVER_TIME,
        "gridcolor": "#e9ecef",
    }


def _layout(height: int, uirevision: str = "live", **extra: Any) -> dict[str, Any]:
    top = 32 if extra.get("showlegend") else 12
    return {
        "height": height,
        "margin": {"l": 48, "r": 16, "t": top, "b": 40},
        "font": FONT,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        # A constant uirevision keeps the user's zoom and hidden traces across refreshes; the
        # empty state has its own, so that the first real figure starts from its own axes.
        "uirevision": uirevision,
        **extra,
    }


def _translucent(hex_color: str) -> str:
    red, green, blue = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.12)"
