"""The Functions page's refresh callback over HTTP: odd data renders, failures become messages."""

from __future__ import annotations

import json
from typing import Any

from monitoring_dashboard.app import create_app
from monitoring_dashboard.settings import Settings
from monitoring_dashboard.snapshots import FunctionList, FunctionSummary, Point, ReadError, Snapshot
from serverless_runtime.registry import FunctionRecord

from tests.dashboard.test_app import StubReader, post_callback, texts

SETTINGS = Settings(output_key="resource-monitor", refresh_seconds=1)
ODD = FunctionRecord("<b>odd</b>", "metrics", history="<b>odd</b>:history")
NOW = 1_800_000_000_000


class StubFunctions(StubReader):
    """A fixed list and snapshot, or the exception it was given."""

    def __init__(self, function: Snapshot | Exception | None) -> None:
        super().__init__()
        self.function = function

    def list_functions(self, query: str = "", page: int = 1) -> FunctionList:
        if isinstance(self.function, Exception):
            raise self.function
        return FunctionList(NOW, [FunctionSummary(ODD, True, output_exists=True)])

    def read_function(self, output_key: str) -> Snapshot | None:
        if isinstance(self.function, Exception):
            raise self.function
        return self.function


def refresh(functions: Any, selected: str | None) -> dict[str, Any]:
    """The Functions page's callback for this source, with `selected` chosen."""
    app = create_app(SETTINGS, functions)
    return post_refresh(app, {"functions-selected": selected, "functions-rendered-version": None})


def post_refresh(app: Any, values: dict[str, Any]) -> dict[str, Any]:
    """POST the Functions page's callback as the browser does, its states set from `values`."""
    client = app.server.test_client()
    return post_callback(client, "functions-list", "functions-refresh-interval", values)


def snapshot(output: Any) -> Snapshot:
    return Snapshot(
        NOW,
        ODD,
        True,
        output=output,
        has_output=True,
        output_raw="raw",
        history=[Point(NOW - 1000, {"a": 1.0}), Point(NOW, {"a": 2.0})],
        has_history=True,
        last_write_ms=NOW,
        last_entry_id=f"{NOW}-0",
    )


def test_functions_callback_renders_odd_keys_and_values_as_text() -> None:
    output = json.loads('{"<script>x</script>": "\\ud800", "a": 2, "deep": [[[[[[[[[[1]]]]]]]]]]}')
    response = refresh(StubFunctions(snapshot(output)), "<b>odd</b>")
    listed = texts(response["functions-list"]["children"])
    assert "<b>odd</b>" in listed
    body = json.dumps(response["function-body"]["children"])
    assert '[\\"<script>x</script>\\"]' in body
    assert "nested too deep to show" in body
    assert response["functions-rendered-version"]["data"]
    head = texts(response["function-head"]["children"])
    assert "<b>odd</b>" in head


def test_functions_callback_without_selection_shows_the_list_only() -> None:
    response = refresh(StubFunctions(snapshot({"a": 1})), None)
    assert "<b>odd</b>" in texts(response["functions-list"]["children"])
    assert response["function-head"]["children"] is None
    assert "function-body" not in response


def test_functions_callback_redis_down_and_unexpected_failures_are_messages() -> None:
    down = refresh(StubFunctions(ReadError("ConnectionError: refused")), "x")
    assert "Redis is unreachable" in texts(down["functions-notices"]["children"])
    # The view keeps what it shows.
    assert "function-body" not in down
    broken = refresh(StubFunctions(RuntimeError("bug in a reader")), "x")
    assert "could not render" in texts(broken["functions-notices"]["children"])
    assert "bug in a reader" not in str(broken)
    unknown = refresh(StubFunctions(None), "nobody")
    assert "Unknown function" in texts(unknown["function-head"]["children"])
