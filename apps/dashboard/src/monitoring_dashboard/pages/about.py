"""About page: what the metrics mean, how they are computed, and how freshness is judged.

The text is `about.md` beside this file (Markdown, rendered as text: no raw HTML).
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import dash
from dash import dcc, html

from monitoring_dashboard.layout import TITLE

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/about", name="About", title=f"About · {TITLE}", order=2
)


def layout(**_kwargs: Any) -> html.Div:
    text = files(__package__).joinpath("about.md").read_text(encoding="utf-8")
    return html.Div(
        [html.H1("About", className="h3 mb-3"), dcc.Markdown(text, className="about")],
        style={"maxWidth": "60rem"},
    )
