"""Logging set-up: readable lines by default, one JSON object per line with LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from serverless_runtime.config import LogFormat

# The package's loggers (`serverless_runtime.<module>`) all hang below this one.
RUNTIME_LOGGER = "serverless_runtime"
# Attributes every LogRecord has; anything else came in through `extra=` and is emitted as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object, with `extra=` fields and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """A readable line, followed by the `traceback` passed with `extra=` (a user failure's)."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        tb = getattr(record, "traceback", None)
        return f"{line}\n{tb}" if isinstance(tb, str) and tb else line


def configure(log_format: LogFormat, level: str) -> None:
    """Send the runtime's own logs to stderr in the chosen format. The root logger is the
    function's: left as Python starts it, as the course runtime did, so that the function's warnings
    still reach stderr and its INFO lines (and their formatting errors) are not emitted unless it
    configures logging itself."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    own = logging.getLogger(RUNTIME_LOGGER)
    own.handlers[:] = [handler]
    own.setLevel(level)
    own.propagate = False  # a handler the function adds to the root does not print ours twice
