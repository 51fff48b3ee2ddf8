"""The Dash application factory."""

from __future__ import annotations

from dash import Dash

from monitoring_dashboard.layout import TITLE, shell
from monitoring_dashboard.pages.functions import callbacks as functions_page
from monitoring_dashboard.pages.live import callbacks as live_page
from monitoring_dashboard.scraper import MetricsScraper
from monitoring_dashboard.settings import SETTINGS_CONFIG_KEY, Settings
from monitoring_dashboard.snapshots import Reader


def create_app(settings: Settings, reader: Reader, scraper: MetricsScraper | None = None) -> Dash:
    """The dashboard; scraper reads the runtimes' /metrics (None: no operations figures)."""
    app = Dash(
        # The package name, so Dash finds assets/ and pages/ beside this file.
        "monitoring_dashboard",
        use_pages=True,
        title=TITLE,
        # No "Updating..." in the tab title on every refresh.
        update_title="",
        # Everything, Bootstrap's CSS included (assets/), is served by the app itself:
        # clusters and browsers may have no route to a CDN.
        serve_locally=True,
        external_stylesheets=[],
        compress=False,
        health_endpoint="healthz",
        enable_mcp=False,
    )
    # Page layouts run inside a request and read the settings from the Flask app's config.
    app.server.config[SETTINGS_CONFIG_KEY] = settings
    app.layout = shell(settings)
    live_page.register(app, settings, reader)
    functions_page.register(app, settings, reader, scraper)
    return app
