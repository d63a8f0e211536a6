"""`rsafe decisions ...`: operator commands that talk to PostgreSQL directly (not to a gateway).

    rsafe decisions migrate                          # schema to the newest revision (Alembic)
    rsafe decisions export --out decisions.jsonl [--since 2026-12-01] [--until ...]
                           [--tenant acme] [--verdict unsafe] [--policy-id rsafe-default]

Both read the database from `--database-url` (env RSAFE_DATABASE_URL). Export writes one JSON
object per line, oldest first, streamed with a server-side cursor; `--out -` writes to stdout.
JSONL only: Parquet would need pyarrow, which the gateway does not depend on (convert with
pyarrow/duckdb if needed).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated

import orjson
import typer
from psycopg_pool import AsyncConnectionPool
from rsafe_core.verdict import Verdict

from .migrate import current_revision, migrate
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


async def export_rows(database_url: str, where: DecisionFilter, out: IO[bytes]) -> int:
    """Write every matching decision as a JSON line to `out`; the number written."""
    count = 0
    async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
        await pool.open(wait=True, timeout=10)
        async for row in DecisionStore(pool, 10.0).iterate(where):
            out.write(orjson.dumps(row) + b"\n")
            count += 1
    return count


@decisions_app.command("export")
def export_command(
    database_url: DatabaseUrlOption,
    out: Annotated[str, typer.Option("--out", help="JSONL file to write; `-`: stdout")] = "-",
    since: Annotated[datetime | None, typer.Option(help="created at or after")] = None,
    until: Annotated[datetime | None, typer.Option(help="created before")] = None,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    verdict: Annotated[Verdict | None, typer.Option(help="only this verdict")] = None,
    policy_id: Annotated[str | None, typer.Option("--policy-id", help="only this policy")] = None,
    model_family: Annotated[
        str | None, typer.Option("--model-family", help="only this guard model family")
    ] = None,
) -> None:
    """Export decisions (and appeals) to JSONL."""
    where = DecisionFilter(
        since=since,
        until=until,
        verdict=verdict.value if verdict is not None else None,
        policy_id=policy_id,
        tenant=tenant,
        model_family=model_family,
    )
    if out == "-":
        count = asyncio.run(export_rows(database_url, where, sys.stdout.buffer))
        sys.stdout.flush()
    else:
        with Path(out).open("wb") as file:
            count = asyncio.run(export_rows(database_url, where, file))
    typer.echo(f"{count} decisions exported", err=True)
