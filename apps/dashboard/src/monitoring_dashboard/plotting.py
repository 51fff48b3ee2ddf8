"""Plotly figures as plain dicts (`go.Figure` validation at 64 CPUs outlasted a refresh)."""

from __future__ import annotations

import html
from typing import Any

Figure = dict[str, Any]

BLUE = "#0d6efd"
GREY = "#6c757d"
GRID_COLOR = "#e9ecef"
FONT = {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12}
HOVER_TIME = "%Y-%m-%d %H:%M:%S UTC"


def escape(text: str) -> str:
    """Make text from Redis show literally: Plotly reads a subset of HTML in labels."""
    return html.escape(text, quote=False)


def empty_figure(message: str, height: int = 260) -> Figure:
    hidden = {"visible": False}
    note = {
        "text": escape(message),
        "showarrow": False,
        "xref": "paper",
        "yref": "paper",
        "x": 0.5,
        "y": 0.5,
        "font": {"size": 14, "color": GREY},
    }
    return {
        "data": [],
        "layout": layout(
            height, uirevision="empty", xaxis=hidden, yaxis=hidden, annotations=[note]
        ),
    }


def time_figure(
    data: list[dict[str, Any]], height: int, yaxis: dict[str, Any], **extra: Any
) -> Figure:
    """A figure over an x axis of ms since the epoch, shown in UTC (the graph's header says so)."""
    xaxis = {"type": "date", "hoverformat": HOVER_TIME, "gridcolor": GRID_COLOR}
    return {"data": data, "layout": layout(height, xaxis=xaxis, yaxis=yaxis, **extra)}


def layout(height: int, uirevision: str = "live", **extra: Any) -> dict[str, Any]:
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
