"""Logging set-up for the entry point: text or JSON lines, each carrying the request id of the call it serves.

Never log image bytes or tokens: handlers log sizes, ids and codes only.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid

__all__ = ["RateLimitedLog", "configure_logging", "new_request_id", "request_id_var"]

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # used with fullmatch: "$" would accept a final newline


def new_request_id(incoming: str = "") -> str:
    """The caller's ``x-request-id`` when it is short and plain, else a fresh one."""
    return incoming if incoming and _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]


class RateLimitedLog:
    """A warning about a condition that can recur thousands of times a second (out of file descriptors, a
    connection limit reached): at most one line per ``interval`` seconds, saying how many it stands for, so the
    log stays readable and bounded however long the condition lasts."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self._logger = logger
        self._interval = interval
        self._last = -interval
        self._left_out = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last < self._interval:
            self._left_out += 1
            return
        if self._left_out:
            message += " (%d more times in the last %.0f s)"
            args = (*args, self._left_out, now - self._last)
        self._logger.warning(message, *args)
        self._last, self._left_out = now, 0


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str = "text", level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
