"""Structured logs: one JSON object per line on stderr.

Callers pass named fields (ids, labels, confidences, timings); free text from requests is never
a field. Uvicorn's own loggers are routed through the same formatter so the stream stays JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

_HANDLER_FLAG = "_triage_json_handler"


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is now (test runners swap it), not the one seen at setup."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            payload.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: exception text may quote request data.
            payload["error_type"] = record.exc_info[0].__name__
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Install the JSON handler once per process (several apps in one test process share it)."""
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_FLAG, True)
    for name in ("triage", "uvicorn", "uvicorn.error"):
        target = logging.getLogger(name)
        if not any(getattr(existing, _HANDLER_FLAG, False) for existing in target.handlers):
            if name == "uvicorn.error":
                continue  # propagates to "uvicorn"
            target.addHandler(handler)
        target.setLevel(level.upper())
        target.propagate = name == "uvicorn.error"
    # The service writes its own access log (route templates, not raw paths or query strings).
    logging.getLogger("uvicorn.access").disabled = True


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"event": event, "fields": fields})
