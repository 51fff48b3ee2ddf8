"""The figure pieces both pages share: an empty state that says why, text from Redis escaped."""

from __future__ import annotations

import plotly.graph_objects as go
from monitoring_dashboard import plotting

XSS = "<img src=x onerror=alert(1)>"


def test_empty_figure_states_the_reason_as_text():
    figure = plotting.empty_figure(f"No data for {XSS}")
    go.Figure(figure)  # Plotly's own validation
    assert figure["data"] == []
    assert figure["layout"]["annotations"][0]["text"] == (
        "No data for &lt;img src=x onerror=alert(1)&gt;"
    )


def test_escape_leaves_plain_names_alone():
    assert plotting.escape("avg-util-cpu0-60sec") == "avg-util-cpu0-60sec"
    assert plotting.escape("a & b <c>") == "a &amp; b &lt;c&gt;"
