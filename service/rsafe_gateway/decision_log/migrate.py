"""Schema migrations with Alembic (migrations/ next to this file).

They run at gateway start when RSAFE_DATABASE_MIGRATE_ON_START is true (the default; an advisory
lock makes concurrent replicas safe), or by `rsafe decisions migrate` for operators who migrate
as a separate step (a Helm hook Job, a release pipeline) and turn the start-up migration off.

The gateway runs them in a child process (`python -m rsafe_gateway.decision_log.migrate`, URL in
RSAFE_DATABASE_URL): Alembic and SQLAlchemy then never load into the serving process, whose memory
and garbage-collection passes they would grow (scripts/benchmark_decision_log.py measures it).
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

HERE = Path(__file__).resolve().parent


def sqlalchemy_url(database_url: str) -> str:
    """The libpq URL (`postgresql://…`) in SQLAlchemy's form for the psycopg 3 driver."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    raise ValueError("RSAFE_DATABASE_URL must start with postgresql://")


def alembic_config(database_url: str) -> Config:
    config = Config(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    # ConfigParser interpolates `%`: a password with one must be doubled to survive.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def migrate(database_url: str) -> None:
    """Bring the schema to the newest revision (blocking; idempotent)."""
    command.upgrade(alembic_config(database_url), "head")


def current_revision(database_url: str) -> str | None:
    from sqlalchemy import create_engine, pool, text

    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    finally:
        engine.dispose()
    return None if row is None else str(row[0])


if __name__ == "__main__":
    migrate(os.environ["RSAFE_DATABASE_URL"])
