"""The Live page's figures: metrics over time, CPUs as lines and heatmap, latest values as bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monitoring_dashboard import plotting
from monitoring_dashboard.output_keys import CACHING, EGRESS, cpu_index, cpu_label, display_order
from monitoring_dashboard.plotting import GRID_COLOR, HOVER_TIME, Figure, empty_figure, escape
from monitoring_dashboard.resample import SERIES_COLUMNS, Columns, Grid, columns, grid
from monitoring_dashboard.snapshots import Point

EGRESS_COLOR = plotting.BLUE
CACHING_COLOR = "#198754"
CPU_COLOR = "#6f42c1"
MEAN_COLOR = "#212529"
# Up to this many CPUs each line gets a color and a legend entry; beyond, the heatmap reads better.
LEGEND_MAX_CPUS = 16
QUALITATIVE = [
    "#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1",
    "#20c997", "#d63384", "#0dcaf0", "#6c757d", "#ffc107",
]  # fmt: skip
# ColorBrewer YlOrRd, light for idle and dark red for busy.
HEAT = [[0.0, "#ffffcc"], [0.25, "#fed976"], [0.5, "#fd8d3c"], [0.75, "#e31a1c"], [1.0, "#800026"]]


def series_figures(points: Sequence[Point], metrics: Sequence[tuple[str, str]]) -> list[Figure]:
    """A series figure per (name, color); many points are first put on shared even columns."""
    picked = columns(points, SERIES_COLUMNS) if len(points) > SERIES_COLUMNS else None
    return [series_figure(points, name, color, picked) for name, color in metrics]


def series_figure(
    points: Sequence[Point], name: str, color: str, picked: Columns | None = None
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
        return empty_figure(f"No history of {name} yet")
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(ys) < 3 else "lines",
        **x,
        "y": ys,
        "name": escape(name),
        "line": {"color": color, "width": 2},
        "fill": "tozeroy",
        "fillcolor": f"rgba({','.join(str(int(color[i : i + 2], 16)) for i in (1, 3, 5))},0.12)",
        "hovertemplate": "%{y:.3f} %<extra></extra>",
    }
    yaxis = {"ticksuffix": " %", "rangemode": "tozero", "gridcolor": GRID_COLOR}
    return plotting.time_figure([trace], 260, yaxis, showlegend=False)


def cpu_figure_height(cpu_count: int) -> int:
    return max(260, min(640, 60 + 8 * cpu_count))


def cpu_lines_figure(grid: Grid | None) -> Figure:
    """Each CPU's 60 s moving average as a line, plus their mean in bold."""
    if grid is None or not grid.names:
        return empty_figure("No per-CPU averages yet")
    height = cpu_figure_height(len(grid.names))
    many = len(grid.names) > LEGEND_MAX_CPUS
    line = {"type": "scatter", "mode": "lines", "x0": grid.x0_ms, "dx": grid.dx_ms}
    traces: list[dict[str, Any]] = [
        {
            **line,
            "y": row,
            "name": escape(cpu_label(name)),
            "line": {"color": CPU_COLOR if many else QUALITATIVE[i % len(QUALITATIVE)], "width": 1},
            "opacity": 0.35 if many else 0.9,
            "hovertemplate": "%{y:.1f} %",
        }
        for i, (name, row) in enumerate(zip(grid.names, grid.rows, strict=True))
    ]
    if len(grid.names) > 1:
        mean = {"y": _column_means(grid.rows), "name": "mean of all CPUs"}
        style = {"line": {"color": MEAN_COLOR, "width": 3}, "hovertemplate": "%{y:.1f} %"}
        traces.append({**line, **mean, **style})
    yaxis = {"ticksuffix": " %", "range": [0, 100], "gridcolor": GRID_COLOR}
    # The legend above the plot, where it cannot collide with the time axis.
    legend = {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}
    return plotting.time_figure(
        traces, height, yaxis, showlegend=not many, legend=legend, hovermode="closest"
    )


def cpu_heatmap_figure(grid: Grid | None) -> Figure:
    """All CPUs at a glance: one row per CPU, color = 60 s moving average."""
    if grid is None or not grid.names:
        return empty_figure("No per-CPU averages yet")
    count = len(grid.names)
    heatmap = {
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
    yaxis = {"autorange": "reversed", "type": "category", "tickfont": {"size": 10}}
    return plotting.time_figure([heatmap], cpu_figure_height(count), yaxis)


def latest_bar_figure(values: Mapping[str, float]) -> Figure:
    """The latest output's values as bars, as the original dashboard showed them."""
    if not values:
        return empty_figure("The latest output holds no numbers", 360)
    names = display_order(values)
    known = {EGRESS: EGRESS_COLOR, CACHING: CACHING_COLOR}
    colors = [
        known.get(name, CPU_COLOR if cpu_index(name) is not None else plotting.GREY)
        for name in names
    ]
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
        "layout": plotting.layout(
            360,
            xaxis={
                "type": "category",
                "tickangle": -90 if len(names) > 12 else -30,
                "tickfont": {"size": 10 if len(names) > 24 else 12},
                "automargin": True,
            },
            yaxis={"gridcolor": GRID_COLOR, "rangemode": "tozero"},
            bargap=0.15,
        ),
    }


def _column_means(rows: list[list[float | None]]) -> list[float | None]:
    means: list[float | None] = []
    for column in zip(*rows, strict=True):
        present = [value for value in column if value is not None]
        means.append(round(sum(present) / len(present), 2) if present else None)
    return means
