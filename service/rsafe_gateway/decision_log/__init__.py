"""The decision log: every moderation decision as a row in PostgreSQL (RSAFE_DATABASE_URL).

    record.py     the row (DecisionRecord) and what a route knows of the caller (DecisionContext)
    writer.py     the background writer: bounded buffer, batched INSERTs, best_effort / required
    migrate.py    Alembic migrations (migrations/), at start or by `rsafe decisions migrate`
    store.py      reading: one decision with its history, filtered pages, reviews
    retention.py  the periodic delete (rows after N days, stored content sooner)
    appeal.py     re-judging a decision with the appeal settings
    runtime.py    what the app starts and stops
    routes.py     /v1/decisions...
    protocol.py   their wire schemas
    cli.py        `rsafe decisions migrate|export`
    parquet.py    the export's Parquet writer (optional pyarrow)

Nothing here runs when RSAFE_DATABASE_URL is unset.
"""
