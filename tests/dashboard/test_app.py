"""The Dash app as a WSGI server: health, local assets only, and the refresh callback over HTTP."""

from __future__ import annotations

import re
from typing import Any

import pytest
from monitoring_dashboard.app import create_app
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import FunctionList, ReadError, Snapshot
from serverless_runtime.registry import FunctionRecord

SETTINGS = Settings(output_key="resource-monitor", refresh_seconds=1)
EMPTY = Snapshot(now_ms=0, record=FunctionRecord("resource-monitor", "metrics"))


class StubReader:
    """Returns a fixed snapshot for the Live page, or raises what it was given; lists nothing."""

    def __init__(self, result: Snapshot | Exception = EMPTY) -> None:
        self.result = result

    def read(self) -> Snapshot:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result

    def list_functions(self, query: str = "", page: int = 1) -> FunctionList:
        return FunctionList(0)

    def read_function(self, output_key: str) -> Snapshot | None:
        return None


def client_for(reader: Any, settings: Settings = SETTINGS):
    return create_app(settings, reader).server.test_client()


def refresh(client) -> dict[str, Any]:
    """POST the Live page's refresh callback as the browser does; return {id: {prop: value}}."""
    return post_callback(client, "live-notices", "refresh-interval", {})


def post_callback(client, output: str, interval: str, values: dict[str, Any]) -> dict[str, Any]:
    """POST the callback whose outputs include `output`, fired by `interval`, as the browser
    does, its states set from `values` (None for the others); return {id: {prop: value}}."""
    (dependency,) = [
        dep for dep in client.get("/_dash-dependencies").get_json() if output in dep["output"]
    ]
    outputs = [
        {"id": part.rsplit(".", 1)[0], "property": part.rsplit(".", 1)[1]}
        for part in dependency["output"].strip(".").split("...")
    ]
    payload = {
        "output": dependency["output"],
        "outputs": outputs,
        "inputs": [{"id": interval, "property": "n_intervals", "value": 1}],
        "state": [{**state, "value": values.get(state["id"])} for state in dependency["state"]],
        "changedPropIds": [f"{interval}.n_intervals"],
    }
    response = client.post("/_dash-update-component", json=payload)
    assert response.status_code == 200, response.get_data(as_text=True)
    result: dict[str, Any] = response.get_json()["response"]
    return result


def texts(component: Any) -> str:
    """All strings inside a serialized component tree."""
    if isinstance(component, str):
        return component
    if isinstance(component, list):
        return " ".join(texts(item) for item in component)
    if isinstance(component, dict):
        return texts(component.get("props", {}).get("children", ""))
    return ""


def test_app_healthz_answers_without_redis():
    client = client_for(StubReader(ReadError("ConnectionError: refused")))
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "OK"


def test_app_page_loads_only_local_resources():
    page = client_for(StubReader()).get("/").get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert "/assets/bootstrap.min.css" in {url.split("?")[0] for url in urls}
    assert all(url.startswith("/") for url in urls), urls
    assert "cdn" not in page.lower()


def test_app_serves_bootstrap_css_with_its_license_header():
    response = client_for(StubReader()).get("/assets/bootstrap.min.css")
    assert response.status_code == 200
    head = response.get_data(as_text=True)[:300]
    response.close()
    assert "Bootstrap  v5.3.9" in head
    assert "Licensed under MIT" in head


def test_app_navbar_links_every_registered_page():
    layout = client_for(StubReader()).get("/_dash-layout").get_data(as_text=True)
    assert '"Live"' in layout
    assert '"About"' in layout
    assert "resource-monitor" in layout


@pytest.mark.parametrize("path", ["/", "/about"])
def test_app_pages_answer(path):
    response = client_for(StubReader()).get(path)
    assert response.status_code == 200
