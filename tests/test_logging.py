"""The JSON log lines: the access log's fast writer produces what the formatter would."""

import asyncio
import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from rsafe_gateway import logging_setup
from rsafe_gateway.logging_setup import (
    AccessLineWriter,
    JsonFormatter,
    configure_logging,
    timestamp,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    configure_logging("info")
    handler = logging.getLogger("rsafe_gateway").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
    logging.getLogger("rsafe_gateway.access").setLevel(logging.NOTSET)


def test_writer_line_matches_the_formatter(stream: io.StringIO) -> None:
    fields = {"request_id": "mod-1", "status": 200, "latency_ms": 0.25, "cached": True}
    AccessLineWriter("rsafe_gateway.access").write("request", fields)
    written = orjson.loads(stream.getvalue())
    record = logging.LogRecord("rsafe_gateway.access", logging.INFO, "", 0, "request", None, None)
    record.fields = fields
    formatted = orjson.loads(JsonFormatter().format(record))
    assert written.keys() == formatted.keys()
    assert {k: v for k, v in written.items() if k != "ts"} == {
        k: v for k, v in formatted.items() if k != "ts"
    }
    assert written["logger"] == "rsafe_gateway.access" and written["level"] == "info"


def test_writer_obeys_the_level(stream: io.StringIO) -> None:
    logging.getLogger("rsafe_gateway.access").setLevel(logging.WARNING)
    AccessLineWriter("rsafe_gateway.access").write("request", {"status": 200})
    assert stream.getvalue() == ""


def test_one_line_per_request_even_with_newlines_in_fields(stream: io.StringIO) -> None:
    writer = AccessLineWriter("rsafe_gateway.access")
    writer.write("request", {"input": "two\nlines"})
    writer.write("request", {"input": "third"})
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["input"] for line in lines] == ["two\nlines", "third"]


def test_timestamp_is_utc_iso_with_milliseconds() -> None:
    assert timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(1_700_000_000.125) == "2023-11-14T22:13:20.125Z"
    assert timestamp(1_700_000_001.5) == "2023-11-14T22:13:21.500Z"  # next second, cache renewed
    assert logging_setup.timestamp(1_700_000_000.0) == "2023-11-14T22:13:20.000Z"  # and back


def test_batched_lines_are_written_after_the_interval(stream: io.StringIO) -> None:
    writer = AccessLineWriter("rsafe_gateway.access", flush_seconds=0.05)

    async def scenario() -> tuple[str, str]:
        writer.write("request", {"n": 1})
        writer.write("request", {"n": 2})
        before = stream.getvalue()
        await asyncio.sleep(0.2)
        return before, stream.getvalue()

    before, after = asyncio.run(scenario())
    assert before == ""
    assert [orjson.loads(line)["n"] for line in after.splitlines()] == [1, 2]


def test_a_full_buffer_and_flush_write_at_once(stream: io.StringIO) -> None:
    writer = AccessLineWriter("rsafe_gateway.access", flush_seconds=60)

    async def scenario() -> None:
        writer.write("request", {"n": 0})
        assert stream.getvalue() == ""
        writer.flush()  # what the app does at shutdown
        assert len(stream.getvalue().splitlines()) == 1
        big = "x" * 1000
        for n in range(AccessLineWriter.MAX_BUFFERED_BYTES // 1000 + 1):
            writer.write("request", {"n": n, "pad": big})
        assert len(stream.getvalue().splitlines()) > 1  # 64 KiB waiting: written without timer
        writer.flush()

    asyncio.run(scenario())


def test_outside_an_event_loop_lines_are_written_at_once(stream: io.StringIO) -> None:
    AccessLineWriter("rsafe_gateway.access", flush_seconds=60).write("request", {"n": 1})
    assert orjson.loads(stream.getvalue())["n"] == 1
