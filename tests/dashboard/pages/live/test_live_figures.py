"""Pure figure builders: valid Plotly figures, readable at 64 CPUs, names shown as text."""

from __future__ import annotations

import plotly.graph_objects as go
import pytest
from monitoring_dashboard.pages.live import figures
from monitoring_dashboard.resample import CPU_COLUMNS, SERIES_COLUMNS, columns, grid
from monitoring_dashboard.snapshots import Point

XSS = "<img src=x onerror=alert(1)>"


def resample(points, names):
    """The CPU graphs' grid: columns picked over points, names read from them (one decimal)."""
    return grid(columns(points, CPU_COLUMNS), names, decimals=1)


def cpu_points(cpus: int, count: int = 30) -> list[Point]:
    return [
        Point(
            1_796_000_000_000 + i * 5000,
            {f"avg-util-cpu{c}-60sec": float((i + c) % 100) for c in range(cpus)}
            | {"percent-network-egress": 3.0 + i / 100, "percent-memory-caching": 40.0},
        )
        for i in range(count)
    ]


def assert_valid(figure):
    # Plotly's own validation: raises on any property Plotly does not know.
    go.Figure(figure)


def test_series_figure_plots_one_metric_at_full_resolution():
    points = cpu_points(2)
    figure = figures.series_figure(points, "percent-network-egress", figures.EGRESS_COLOR)
    assert_valid(figure)
    (trace,) = figure["data"]
    assert trace["x"] == [point.at_ms for point in points]
    assert trace["y"][0] == 3.0
    assert figure["layout"]["xaxis"]["type"] == "date"


def test_series_figure_an_hour_at_one_second_is_evenly_downsampled():
    points = [Point(1_796_000_000_000 + i * 1000, {"m": float(i)}) for i in range(3600)]
    figure, other = figures.series_figures(points, [("m", figures.CACHING_COLOR), ("n", "#000000")])
    assert_valid(figure)
    assert other["data"] == []
    (trace,) = figure["data"]
    assert "x" not in trace
    assert len(trace["y"]) == SERIES_COLUMNS
    assert trace["y"][-1] == 3599.0
    assert trace["x0"] + (len(trace["y"]) - 1) * trace["dx"] == points[-1].at_ms


def test_series_figure_without_the_metric_is_an_empty_state():
    figure = figures.series_figure(cpu_points(1), "absent", figures.EGRESS_COLOR)
    assert figure["data"] == []
    assert "absent" in figure["layout"]["annotations"][0]["text"]


def test_cpu_lines_few_cpus_get_a_legend_and_a_mean_line():
    figure = figures.cpu_lines_figure(
        resample(cpu_points(4), [f"avg-util-cpu{c}-60sec" for c in range(4)])
    )
    assert_valid(figure)
    names = [trace["name"] for trace in figure["data"]]
    assert names == ["CPU 0", "CPU 1", "CPU 2", "CPU 3", "mean of all CPUs"]
    assert figure["layout"]["showlegend"] is True


def test_cpu_lines_64_cpus_hide_the_legend_and_share_x_via_x0_dx():
    names = [f"avg-util-cpu{c}-60sec" for c in range(64)]
    figure = figures.cpu_lines_figure(resample(cpu_points(64), names))
    assert_valid(figure)
    assert len(figure["data"]) == 65
    assert figure["layout"]["showlegend"] is False
    assert all("x" not in trace and "dx" in trace for trace in figure["data"])


def test_cpu_heatmap_has_one_row_per_cpu_in_order():
    names = [f"avg-util-cpu{c}-60sec" for c in range(64)]
    figure = figures.cpu_heatmap_figure(resample(cpu_points(64), names))
    assert_valid(figure)
    (trace,) = figure["data"]
    assert trace["y"] == [f"CPU {c}" for c in range(64)]
    assert len(trace["z"]) == 64
    assert (trace["zmin"], trace["zmax"]) == (0, 100)
    assert figure["layout"]["yaxis"]["autorange"] == "reversed"
    assert figure["layout"]["height"] >= 8 * 64


@pytest.mark.parametrize("builder", [figures.cpu_lines_figure, figures.cpu_heatmap_figure])
def test_cpu_figures_without_data_are_empty_states(builder):
    figure = builder(None)
    assert_valid(figure)
    assert figure["data"] == []


def test_latest_bar_figure_orders_and_escapes_names():
    values = {
        "avg-util-cpu1-60sec": 20.0,
        XSS: 42.0,
        "percent-memory-caching": 40.0,
        "avg-util-cpu0-60sec": 10.0,
        "percent-network-egress": 3.0,
    }
    figure = figures.latest_bar_figure(values)
    assert_valid(figure)
    (trace,) = figure["data"]
    assert trace["x"] == [
        "percent-network-egress",
        "percent-memory-caching",
        "avg-util-cpu0-60sec",
        "avg-util-cpu1-60sec",
        "&lt;img src=x onerror=alert(1)&gt;",
    ]
    assert trace["y"] == [3.0, 40.0, 10.0, 20.0, 42.0]


def test_latest_bar_figure_without_numbers_is_an_empty_state():
    assert figures.latest_bar_figure({})["data"] == []
