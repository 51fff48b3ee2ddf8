"""The app shell shared by every page: navbar, browser-side stores, page container."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from monitoring_dashboard import ids
from monitoring_dashboard.settings import Settings

# Neutral: the dashboard shows every registered function, not only the one it is set up for.
TITLE = "Serverless functions"


def shell(settings: Settings) -> html.Div:
    links = [
        dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
        for page in dash.page_registry.values()
    ]
    links.append(
        dbc.NavItem(
            html.Span(
                f"key {settings.output_key} · times in UTC",
                className="small text-white-50",
                title="REDIS_OUTPUT_KEY; every time on these pages is UTC",
            ),
            class_name="d-flex align-items-center ms-md-3",
        )
    )
    return html.Div(
        [
            dbc.NavbarSimple(
                links,
                brand=TITLE,
                brand_href="/",
                color="dark",
                dark=True,
                fluid=True,
                class_name="mb-3",
            ),
            # Kept in the shell so that leaving the Live page for About keeps them.
            dcc.Store(id=ids.STATUS_STORE, storage_type="memory"),
            dcc.Store(id=ids.HISTORY_STORE, storage_type="memory"),
            dbc.Container(dash.page_container, fluid=True, class_name="pb-4 px-4"),
        ]
    )
