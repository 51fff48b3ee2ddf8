"""LOG_FORMAT: the runtime's own lines as text or one JSON object each; root left alone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from serverless_runtime.config import LogFormat
from serverless_runtime.ops.logs import RUNTIME_LOGGER, configure

log = logging.getLogger(f"{RUNTIME_LOGGER}.loop")


@pytest.fixture(autouse=True)
def _runtime_logger_restored() -> Iterator[None]:
    own = logging.getLogger(RUNTIME_LOGGER)
    saved = own.handlers[:], own.level, own.propagate
    yield
    own.handlers[:], own.level, own.propagate = saved


def test_json_lines_carry_the_extra_fields_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(LogFormat.JSON, "INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("call failed", extra={"kind": "handler-error", "input_age": 1.5})
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "serverless_runtime.loop"
    assert entry["message"] == "call failed"
    assert (entry["kind"], entry["input_age"]) == ("handler-error", 1.5)
    assert "ValueError: boom" in entry["traceback"]


def test_text_lines_are_followed_by_a_users_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure(LogFormat.TEXT, "INFO")
    log.warning("handler failed", extra={"traceback": "Traceback ...\nKeyError: 'cpu'"})
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("WARNING serverless_runtime.loop: handler failed")
    assert lines[1:] == ["Traceback ...", "KeyError: 'cpu'"]


def test_level_filters_and_the_roots_handlers_do_not_print_ours_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(LogFormat.TEXT, "WARNING")
    root_handler = logging.StreamHandler()  # a function's own logging set-up
    logging.getLogger().addHandler(root_handler)
    try:
        log.info("quiet")
        log.warning("loud")
    finally:
        logging.getLogger().removeHandler(root_handler)
    err = capsys.readouterr().err
    assert "quiet" not in err
    assert err.count("loud") == 1
