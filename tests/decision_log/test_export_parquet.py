"""`rsafe decisions export` to Parquet, against a real PostgreSQL: the same rows as the JSONL export,
typed columns, filters, an empty export with the schema; and a clear error when pyarrow (the
optional extra) is missing."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from decision_log.conftest import UNSAFE_MARKER
from decision_log.test_decision_log import wait_rows
from rsafe_gateway.cli import app as cli_app
from rsafe_gateway.decision_log.migrate import migrate
from rsafe_gateway.decision_log.record import COLUMNS


def _export(database: str, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["decisions", "export", "--database-url", database, *args])


def test_parquet_holds_the_rows_of_the_jsonl_export_with_typed_columns(
    make_client: Callable[..., TestClient], verdict_server: str, database: str, tmp_path: Path
) -> None:
    pq = _pyarrow_parquet()
    client = make_client(
        model_server_url=verdict_server, database_url=database, decision_log_store_content=True
    )
    unsafe = client.post("/v1/moderate", json={"input": f"x {UNSAFE_MARKER}"}).json()
    client.post(
        "/v1/moderate",
        json={"input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
    )
    wait_rows(database, 2)

    jsonl, table_file = tmp_path / "all.jsonl", tmp_path / "all.parquet"
    assert _export(database, "--out", str(jsonl)).exit_code == 0
    exported = _export(database, "--out", str(table_file))  # the suffix picks Parquet
    assert exported.exit_code == 0, exported.output
    assert "2 decisions exported" in exported.output
    table = pq.read_table(table_file)
    assert table.schema.names == list(COLUMNS)
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    categories = table.schema.field("categories").type
    assert str(categories).startswith("list<") and str(categories.value_type) == "string"
    assert str(table.schema.field("flagged").type) == "bool"
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    rows = table.to_pylist()
    assert [row["id"] for row in rows] == [line["id"] for line in lines]
    for row, line in zip(rows, lines, strict=True):
        for column in ("verdict", "flagged", "categories", "policy_sha256", "model_family"):
            assert row[column] == line[column], column
        assert row["created_at"].isoformat() == line["created_at"].replace("Z", "+00:00")
        assert json.loads(row["content"]) == line["content"]  # the input as JSON text
    assert rows[0]["id"] == unsafe["id"] and rows[0]["categories"] == ["U1"]

    # Filters apply as for JSONL; no match still writes the schema.
    only_unsafe = tmp_path / "unsafe.parq"
    filtered = _export(
        database, "--out", str(only_unsafe), "--format", "parquet", "--verdict", "unsafe"
    )
    assert filtered.exit_code == 0, filtered.output
    assert [r["id"] for r in pq.read_table(only_unsafe).to_pylist()] == [unsafe["id"]]
    empty = tmp_path / "empty.parquet"
    result = _export(database, "--out", str(empty), "--tenant", "nobody")
    assert result.exit_code == 0 and "0 decisions exported" in result.output
    assert pq.read_table(empty).num_rows == 0
    assert pq.read_table(empty).schema.names == list(COLUMNS)


def _pyarrow_parquet() -> Any:
    # Installed with the dev extra: missing here is a broken environment, not a reason to skip.
    return importlib.import_module("pyarrow.parquet")


def test_without_pyarrow_the_export_says_how_to_install_it_and_writes_nothing(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = importlib.import_module

    def no_pyarrow(name: str, package: str | None = None) -> Any:
        if name.split(".")[0] == "pyarrow":
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, package)

    migrate(database)
    monkeypatch.setattr(importlib, "import_module", no_pyarrow)  # what parquet.py imports with
    target = tmp_path / "out.parquet"
    result = _export(database, "--out", str(target))
    assert result.exit_code == 2
    assert "pip install 'rsafe-gateway[parquet]'" in result.output
    assert not target.exists()
    # JSONL needs no extra.
    jsonl = _export(database, "--out", str(tmp_path / "out.jsonl"), "--format", "jsonl")
    assert jsonl.exit_code == 0 and "0 decisions exported" in jsonl.output


def test_parquet_to_stdout_is_a_usage_error(database: str) -> None:
    result = _export(database, "--format", "parquet")
    assert result.exit_code == 2
    assert "Parquet goes to a file" in result.output
