"""Alembic's entry point for the decision log: online migrations only, under an advisory lock so
replicas that start together migrate once (the others wait, then find the schema current)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

# Any constant; the same for every gateway (pg_advisory_xact_lock is released at commit).
MIGRATION_LOCK_ID = 7_253_019_190


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    return url or context.config.get_main_option("sqlalchemy.url") or ""


def run_migrations_online() -> None:
    from rsafe_gateway.decision_log.migrate import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(_url()), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the decision log migrates online only: give it a database URL")
run_migrations_online()
