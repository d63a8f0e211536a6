"""JSON log lines (one object per line) for the gateway's own loggers, on stderr.

Every line has `ts`, `level`, `logger`, `msg`, then the record's own fields. The access log writes
one such line per request; it goes through `AccessLineWriter`, not `logging.Logger.info`: building
a LogRecord (caller lookup, thread and process names) and formatting it cost a large share of a
whole cache hit (scripts/profile_gateway.py). The writer produces the identical line for a tenth,
still obeys the configured level, and can batch its writes (see its doc).
"""

from __future__ import annotations

import asyncio
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


def json_line(
    created: float, level: str, logger: str, msg: str, fields: dict[str, Any], option: int = 0
) -> bytes:
    entry: dict[str, Any] = {"ts": timestamp(created), "level": level, "logger": logger, "msg": msg}
    entry.update(fields)
    return orjson.dumps(entry, default=str, option=option)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        extra: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {}
        if record.exc_info:
            extra["exc"] = self.formatException(record.exc_info)
        return json_line(
            record.created, record.levelname.lower(), record.name, record.getMessage(), extra
        ).decode()


class _LockedStreamHandler(logging.StreamHandler[TextIO]):
    """A stderr handler whose writes share one lock with `AccessLineWriter`'s (no torn lines)."""

    def emit(self, record: logging.LogRecord) -> None:
        with _STREAM_LOCK:
            super().emit(record)


class AccessLineWriter:
    """One INFO line per request for `logger_name`, written like the formatter above would.

    With `flush_seconds` > 0, lines are collected and written together at most that long after
    the first of them (or once 64 KiB are waiting), like nginx's `access_log ... buffer= flush=`:
    a write system call per request is a visible share of a cache hit. `flush()` writes what
    is waiting; the app calls it at shutdown. A crash loses at most `flush_seconds` of lines.
    """

    MAX_BUFFERED_BYTES = 65_536

    def __init__(self, logger_name: str, flush_seconds: float = 0.0) -> None:
        self._logger = logging.getLogger(logger_name)
        self._name = logger_name
        self._flush_seconds = flush_seconds
        self._buffer = bytearray()
        self._flush_timer: asyncio.TimerHandle | None = None

    def write(self, msg: str, fields: dict[str, Any]) -> None:
        if not self._logger.isEnabledFor(logging.INFO):  # cached by `logging`: a dict lookup
            return
        line = json_line(time.time(), "info", self._name, msg, fields, orjson.OPT_APPEND_NEWLINE)
        if self._flush_seconds <= 0:
            _write_lines(line)
            return
        self._buffer += line
        if len(self._buffer) >= self.MAX_BUFFERED_BYTES:
            self.flush()
        elif self._flush_timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not inside the server's loop: nothing would flush later
                self.flush()
                return
            self._flush_timer = loop.call_later(self._flush_seconds, self.flush)

    def flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._buffer:
            lines = bytes(self._buffer)
            self._buffer.clear()
            _write_lines(lines)


def _write_lines(lines: bytes) -> None:
    stream = _HANDLER.stream if _HANDLER is not None else sys.stderr
    with _STREAM_LOCK:
        # Bytes straight to the binary buffer under a text stream (stderr): no decode and
        # re-encode. The text layer is flushed first, so the order of lines is kept.
        binary = getattr(stream, "buffer", None)
        if binary is not None:
            stream.flush()
            binary.write(lines)
            binary.flush()
        else:
            stream.write(lines.decode())
            stream.flush()


# The handler `configure_logging` installed: the access log writes to its stream.
_HANDLER: _LockedStreamHandler | None = None


def configure_logging(level: str) -> None:
    """Route the gateway's loggers to stderr as JSON lines (idempotent)."""
    global _HANDLER
    handler = _HANDLER = _LockedStreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("rsafe_gateway")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
