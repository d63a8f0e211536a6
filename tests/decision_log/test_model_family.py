"""The model family and template version of every decision (revision 0002), against a real
PostgreSQL: recorded from the guard format the gateway serves, filled in for rows written before,
and a filter of the listing and the export."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command
from fastapi.testclient import TestClient
from rsafe_core.formats import FORMATS, guard_format
from typer.testing import CliRunner

from conftest import tiny_settings, wait_until
from decision_log.test_decision_log import ADMIN, bearer, keys_file, wait_rows
from postgres import count_rows
from rsafe_gateway.cli import app as cli_app
from rsafe_gateway.decision_log.migrate import alembic_config, current_revision, migrate
from rsafe_gateway.families import format_for


def _old_row(
    connection: psycopg.Connection[tuple[object, ...]], row_id: str, template: str
) -> None:
    """A row as the gateway wrote it before revision 0002 (no family)."""
    connection.execute(
        "INSERT INTO decisions (id, created_at, kind, tenant, route, target, policy_id, "
        "policy_version, policy_sha256, model, model_family, template_version, verdict, flagged, "
        "categories, prompt_tokens, completion_tokens, latency_ms, cached, content_sha256) "
        "VALUES (%s, %s, 'decision', 'default', '/v1/moderate', 'prompt', 'rsafe-default', '1', "
        "'abc', 'm', NULL, %s, 'safe', false, '{}', 1, 1, 1.0, false, 'def')",
        [row_id, datetime.now(UTC), template],
    )


def test_revision_0002_fills_in_the_family_of_older_rows_and_indexes_it(database: str) -> None:
    command.upgrade(alembic_config(database), "0001")
    with psycopg.connect(database) as connection:
        _old_row(connection, "old-rsafe", "rsafe-v3")
        _old_row(connection, "old-unknown", "other-v1")  # not an rsafe template: left alone
    command.upgrade(alembic_config(database), "0002")
    assert current_revision(database) == "0002"
    with psycopg.connect(database) as connection:
        rows = connection.execute("SELECT id, model_family FROM decisions").fetchall()
        families: dict[object, object] = dict(rows)
        indexes = {
            row[0]
            for row in connection.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'decisions'"
            )
        }
    assert families == {"old-rsafe": "rsafe", "old-unknown": None}
    assert "decisions_model_family_seq" in indexes
    command.downgrade(alembic_config(database), "0001")
    assert current_revision(database) == "0001"
    migrate(database)  # and up again, to the newest
    assert current_revision(database) is not None


def test_each_decision_records_the_served_family_and_the_listing_filters_by_it(
    make_client: Callable[..., TestClient], verdict_server: str, database: str, tmp_path: Path
) -> None:
    client = make_client(
        model_server_url=verdict_server, database_url=database, auth_enabled=True,
        api_keys_file=keys_file(tmp_path / "keys.yaml"),
    )  # fmt: skip
    wait_until(lambda: count_rows(database) == 0, 30, "the migrated schema")
    with psycopg.connect(database) as connection:
        _old_row(connection, "from-another-family", "other-v1")
        connection.execute(
            "UPDATE decisions SET model_family = 'other' WHERE id = 'from-another-family'"
        )
    answer = client.post("/v1/moderate", json={"input": "x"}, headers=bearer(ADMIN)).json()
    wait_rows(database, 2)

    # Read from the format object the settings name, not a fixed name: families are pluggable.
    served = guard_format(tiny_settings().model_family)
    decision = client.get(f"/v1/decisions/{answer['id']}", headers=bearer(ADMIN)).json()
    assert decision["decision"]["model_family"] == served.family
    assert decision["decision"]["template_version"] == served.template_version

    listed = client.get(
        "/v1/decisions", params={"model_family": served.family}, headers=bearer(ADMIN)
    ).json()["decisions"]
    assert [row["id"] for row in listed] == [answer["id"]]
    other = client.get(
        "/v1/decisions", params={"model_family": "other"}, headers=bearer(ADMIN)
    ).json()["decisions"]
    assert [row["id"] for row in other] == ["from-another-family"]

    out = tmp_path / "other.jsonl"
    exported = CliRunner().invoke(
        cli_app,
        ["decisions", "export", "--database-url", database, "--out", str(out),
         "--model-family", "other"],
    )  # fmt: skip
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["from-another-family"]


@pytest.mark.parametrize("family", sorted(FORMATS))
def test_every_family_the_gateway_can_serve_is_recorded_as_itself(
    family: str, make_client: Callable[..., TestClient], verdict_server: str, database: str
) -> None:
    """Not a fixed name: the row says which family judged (whatever its answer meant)."""
    client = make_client(
        model_server_url=verdict_server, database_url=database, model_family=family
    )
    answer = client.post("/v1/moderate", json={"input": "hello"})
    assert answer.status_code == 200, answer.text
    wait_rows(database, 1)
    with psycopg.connect(database) as connection:
        row = connection.execute("SELECT model_family, template_version FROM decisions").fetchone()
    served = format_for(tiny_settings(model_family=family))
    assert row == (family, served.template_version)
