"""`rsafe decisions ...`: operator commands that talk to PostgreSQL directly (not to a gateway).

    rsafe decisions migrate                          # schema to the newest revision (Alembic)
    rsafe decisions export --out decisions.jsonl [--since 2026-12-01] [--until ...]
                           [--tenant acme] [--verdict unsafe] [--policy-id rsafe-default]
                           [--model-family rsafe] [--format jsonl|parquet]

Both read the database from `--database-url` (env RSAFE_DATABASE_URL). Export streams the rows
oldest first with a server-side cursor: JSONL (one JSON object per line; `--out -` writes to
stdout) or Parquet (`--format parquet`, or an `--out` ending in .parquet; a file only), which
needs the optional extra `rsafe-gateway[parquet]` (pyarrow; see parquet.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from psycopg_pool import AsyncConnectionPool
from rsafe_core.verdict import Verdict

from .migrate import current_revision, migrate
from .parquet import ParquetUnavailable, check_available, write_parquet
from .store import DecisionFilter, DecisionStore

decisions_app = typer.Typer(
    help="The decision log in PostgreSQL: migrate its schema, export it.", no_args_is_help=True
)

DatabaseUrlOption = Annotated[
    str,
    typer.Option("--database-url", envvar="RSAFE_DATABASE_URL", help="postgresql://… of the log"),
]


@decisions_app.command("migrate")
def migrate_command(database_url: DatabaseUrlOption) -> None:
    """Apply the decision log's migrations (idempotent)."""
    migrate(database_url)
    typer.echo(f"decision log schema at revision {current_revision(database_url)}")


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    PARQUET = "parquet"


async def _decisions(database_url: str, where: DecisionFilter) -> AsyncIterator[dict[str, Any]]:
    async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
        await pool.open(wait=True, timeout=10)
        async for row in DecisionStore(pool, 10.0).iterate(where):
            yield row


async def export_rows(database_url: str, where: DecisionFilter, out: IO[bytes]) -> int:
    """Write every matching decision as a JSON line to `out`; the number written."""
    count = 0
    async for row in _decisions(database_url, where):
        out.write(orjson.dumps(row) + b"\n")
        count += 1
    return count


async def export_parquet(database_url: str, where: DecisionFilter, path: Path) -> int:
    """Write every matching decision to a Parquet file; the number written."""
    return await write_parquet(_decisions(database_url, where), path)


@decisions_app.command("export")
def export_command(
    database_url: DatabaseUrlOption,
    out: Annotated[
        str, typer.Option("--out", help="file to write; `-`: stdout (JSONL only)")
    ] = "-",
    since: Annotated[datetime | None, typer.Option(help="created at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="created before")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    verdict: Annotated[Verdict | None, typer.Option(help="only this verdict")] = None,
    policy_id: Annotated[str | None, typer.Option("--policy-id", help="only this policy")] = None,
    model_family: Annotated[
        str | None, typer.Option("--model-family", help="only this guard model family")
    ] = None,
    export_format: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format", help="jsonl or parquet; default: from --out (.parquet), else jsonl"
        ),
    ] = None,
) -> None:
    """Export decisions (and appeals) to JSONL or Parquet."""
    if export_format is None:
        parquet = out != "-" and out.lower().endswith(".parquet")
        export_format = ExportFormat.PARQUET if parquet else ExportFormat.JSONL
    where = DecisionFilter(
        since=since,
        until=until,
        verdict=verdict.value if verdict is not None else None,
        policy_id=policy_id,
        tenant=tenant,
        model_family=model_family,
    )
    if export_format is ExportFormat.PARQUET:
        if out == "-":
            raise typer.BadParameter(
                "Parquet goes to a file: give --out FILE.parquet", param_hint="--out"
            )
        try:
            check_available()  # before any database work
        except ParquetUnavailable as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        count = asyncio.run(export_parquet(database_url, where, Path(out)))
    elif out == "-":
        count = asyncio.run(export_rows(database_url, where, sys.stdout.buffer))
        sys.stdout.flush()
    else:
        with Path(out).open("wb") as file:
            count = asyncio.run(export_rows(database_url, where, file))
    typer.echo(f"{count} decisions exported", err=True)
