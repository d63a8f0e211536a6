"""JSON log lines (one object per line) for the gateway's own loggers, on stderr.

Every line has `ts`, `level`, `logger`, `msg`, then the record's own fields. The access log writes
one such line per request; it goes through `AccessLineWriter`, not `logging.Logger.info`: building
a LogRecord (caller lookup, thread and process names) and formatting it cost ~30 µs per request
measured here, about a fifth of a whole cache hit. The writer produces the identical line for
~3 µs and still obeys the configured level.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, TextIO

import orjson

_STREAM_LOCK = threading.Lock()
_second_cache: tuple[int, str] = (-1, "")


def timestamp(created: float) -> str:
    """`2026-11-25T19:54:51.571Z`; the part up to the second is formatted once per second."""
    global _second_cache
    second = int(created)
    cached_second, text = _second_cache
    if second != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, text)
    return f"{text}.{int((created - second) * 1000):03d}Z"


def json_line(created: float, level: str, logger: str, msg: str, fields: dict[str, Any]) -> str:
    entry: dict[str, Any] = {"ts": timestamp(created), "level": level, "logger": logger, "msg": msg}
    entry.update(fields)
    return orjson.dumps(entry, default=str).decode()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        extra: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {}
        if record.exc_info:
            extra["exc"] = self.formatException(record.exc_info)
        return json_line(
            record.created, record.levelname.lower(), record.name, record.getMessage(), extra
        )


class _LockedStreamHandler(logging.StreamHandler[TextIO]):
    """A stderr handler whose writes share one lock with `AccessLineWriter`'s (no torn lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        with _STREAM_LOCK:
            super().emit(record)


class AccessLineWriter:
    """One INFO line per request for `logger_name`, written like the formatter above would."""

    def __init__(self, logger_name: str) -> None:
        self._logger = logging.getLogger(logger_name)
        self._name = logger_name

    def write(self, msg: str, fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(logging.INFO):  # cached by `logging`: a dict lookup
            return
        line = json_line(time.time(), "info", self._name, msg, fields) + "\n"
        stream = _gateway_stream()
        with _STREAM_LOCK:
            stream.write(line)
            stream.flush()


def _gateway_stream() -> TextIO:
    for handler in logging.getLogger("rsafe_gateway").handlers:
        if isinstance(handler, logging.StreamHandler):
            return handler.stream  # type: ignore[no-any-return]
    return sys.stderr


def configure_logging(level: str) -> None:
    """Route the gateway's loggers to stderr as JSON lines (idempotent)."""
    handler = _LockedStreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("rsafe_gateway")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
