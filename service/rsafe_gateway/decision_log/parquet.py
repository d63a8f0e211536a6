"""`rsafe decisions export` to Parquet: the rows in batches, with a fixed schema (an export of no
rows still has every column and type).

pyarrow is an optional extra (`pip install 'rsafe-gateway[parquet]'`): the gateway never imports
this module, so its image and its serving process do without it. `content` (a text or a list of
messages, only with content retention on) is kept as its JSON text: one column type for both.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from .record import COLUMNS

BATCH_ROWS = 10_000  # rows per record batch: bounded memory for any size of export
MISSING_PYARROW = (
    "Parquet export needs pyarrow, an optional extra: pip install 'rsafe-gateway[parquet]' "
    "(or export JSONL: --out file.jsonl)"
)


class ParquetUnavailable(RuntimeError):
    """pyarrow is not installed."""


def _pyarrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or ParquetUnavailable with the install hint."""
    try:
        return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise ParquetUnavailable(MISSING_PYARROW) from None


def schema(pa: Any) -> Any:
    """The Arrow schema of an exported decision (the table's columns, in its order)."""
    text = pa.string()
    types: dict[str, Any] = {
        "created_at": pa.timestamp("us", tz="UTC"),
        "flagged": pa.bool_(),
        "cached": pa.bool_(),
        "categories": pa.list_(text),
        "prompt_tokens": pa.int64(),
        "completion_tokens": pa.int64(),
        "latency_ms": pa.float64(),
    }
    nullable = {
        "appeal_of",
        "key_id",
        "model_family",
        "reasoning",
        "fail_mode",
        "failure",
        "content",
    }
    return pa.schema(
        [pa.field(name, types.get(name, text), nullable=name in nullable) for name in COLUMNS]
    )


def _arrow_row(row: dict[str, Any]) -> dict[str, Any]:
    content = row.get("content")
    return {**row, "content": None if content is None else orjson.dumps(content).decode()}


async def write_parquet(rows: AsyncIterator[dict[str, Any]], path: Path) -> int:
    """Write `rows` to a Parquet file at `path` (zstd); the number written."""
    pa, pq = _pyarrow()
    arrow_schema = schema(pa)
    count = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(str(path), arrow_schema, compression="zstd") as writer:
        async for row in rows:
            batch.append(_arrow_row(row))
            if len(batch) == BATCH_ROWS:
                writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=arrow_schema))
                count += len(batch)
                batch.clear()
        if batch or count == 0:  # an empty export still writes a file with the schema
            writer.write_batch(pa.RecordBatch.from_pylist(batch, schema=arrow_schema))
            count += len(batch)
    return count


def check_available() -> None:
    """Fail before any database work when pyarrow is missing."""
    _pyarrow()
