"""The decision log against a real PostgreSQL: every decision written, read back per tenant,
listed by admins, exported, appealed, reviewed, purged; best_effort and required when it fails."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import VllmServer, free_port, tiny_settings, wait_until
from decision_log.conftest import UNSAFE_MARKER
from postgres import count_rows
from rsafe_gateway.app import create_app
from rsafe_gateway.cli import app as cli_app
from rsafe_gateway.decision_log.migrate import alembic_config
from rsafe_gateway.decision_log.retention import Retention, enforce_retention
from rsafe_gateway.gateway_state import gateway_state
from rsafe_gateway.tenants import hash_key

ACME, GLOBEX, ADMIN, READER_LESS, LEGACY = "acme-key", "globex-key", "admin-key", "mod-only", "old"


def keys_file(path: Path, extra: list[dict[str, object]] | None = None) -> Path:
    entries: list[dict[str, object]] = [
        {"sha256": hash_key(ACME), "tenant": "acme", "scopes": ["moderate", "decisions:read"]},
        {"sha256": hash_key(GLOBEX), "tenant": "globex", "scopes": ["moderate", "decisions:read"]},
        {"sha256": hash_key(ADMIN), "tenant": "ops", "scopes": ["admin"]},
        {"sha256": hash_key(READER_LESS), "tenant": "acme", "scopes": ["moderate"]},
        *(extra or []),
    ]
    path.write_text(json.dumps({"keys": entries}))  # JSON is YAML
    return path


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_rows(url: str, expected: int) -> None:
    wait_until(lambda: count_rows(url) >= expected, 15, f"{expected} decision rows")
    assert count_rows(url) == expected


@pytest.fixture
def tenant_client(
    make_client: Callable[..., TestClient], verdict_server: str, database: str, tmp_path: Path
) -> TestClient:
    return make_client(
        model_server_url=verdict_server,
        database_url=database,
        auth_enabled=True,
        api_keys_file=keys_file(tmp_path / "keys.yaml"),
        api_key_hashes=hash_key(LEGACY),
    )


def test_every_decision_of_the_three_routes_is_fetched_by_id_with_the_same_verdict(
    make_client: Callable[..., TestClient], verdict_server: str, database: str
) -> None:
    client = make_client(model_server_url=verdict_server, database_url=database)
    single = client.post("/v1/moderate", json={"input": f"hello {UNSAFE_MARKER}"}).json()
    batch = client.post(
        "/v1/moderate/batch", json={"items": [{"input": "a"}, {"input": 5}, {"input": "b"}]}
    ).json()["results"]
    openai = client.post("/v1/moderations", json={"input": ["c", "d"]})
    answered = [single, batch[0], batch[2]]
    wait_rows(database, 5)  # the bad batch item is no decision

    for answer in answered:
        detail = client.get(f"/v1/decisions/{answer['id']}")
        assert detail.status_code == 200
        decision = detail.json()["decision"]
        assert (decision["verdict"], decision["flagged"]) == (answer["verdict"], answer["flagged"])
        assert decision["policy_sha256"] == answer["policy"]["sha256"]
        assert decision["content"] is None  # content retention is off: only the hash
    first = client.get(f"/v1/decisions/{single['id']}").json()["decision"]
    assert first["verdict"] == "unsafe" and first["categories"] == ["U1"]
    assert first["route"] == "/v1/moderate" and first["tenant"] == "default"
    expected = hashlib.sha256(json.dumps(f"hello {UNSAFE_MARKER}").encode()).hexdigest()
    assert first["content_sha256"] == expected
    assert (first["prompt_tokens"], first["completion_tokens"]) == (7, 3)
    openai_id = openai.headers["x-request-id"]
    routes = {
        client.get(f"/v1/decisions/{openai_id}-{i}").json()["decision"]["route"] for i in (0, 1)
    }
    assert routes == {"/v1/moderations"}


def test_a_tenant_never_reads_another_tenants_decision_and_only_admin_lists(
    tenant_client: TestClient,
) -> None:
    answer = tenant_client.post("/v1/moderate", json={"input": "x"}, headers=bearer(ACME)).json()
    path = f"/v1/decisions/{answer['id']}"
    wait_until(
        lambda: tenant_client.get(path, headers=bearer(ACME)).status_code == 200, 10, "the row"
    )
    own = tenant_client.get(path, headers=bearer(ACME)).json()["decision"]
    assert own["tenant"] == "acme" and own["key_id"] == hash_key(ACME)[:12]

    other = tenant_client.get(path, headers=bearer(GLOBEX))
    assert other.status_code == 404
    assert other.json()["error"]["type"] == "invalid_request"
    assert tenant_client.get(path, headers=bearer(LEGACY)).status_code == 404  # tenant `default`
    assert tenant_client.get(path, headers=bearer(ADMIN)).status_code == 200

    no_read = tenant_client.get(path, headers=bearer(READER_LESS))
    assert no_read.status_code == 403 and no_read.json()["error"]["type"] == "forbidden"
    for key in (ACME, GLOBEX, READER_LESS, LEGACY):
        listing = tenant_client.get("/v1/decisions", headers=bearer(key))
        assert listing.status_code == 403
        assert set(listing.json()["error"]) == {"type", "message", "param"}
    assert tenant_client.get("/v1/decisions").status_code == 401
    listed = tenant_client.get("/v1/decisions", headers=bearer(ADMIN)).json()["decisions"]
    assert [row["id"] for row in listed] == [answer["id"]]
    # An admin key without `moderate`... has it: admin implies every scope.
    assert tenant_client.post("/v1/moderate", json={"input": "y"}, headers=bearer(ADMIN)).is_success


def test_a_key_without_moderate_scope_cannot_moderate(
    make_client: Callable[..., TestClient], verdict_server: str, tmp_path: Path
) -> None:
    reader = "reader-key"
    path = keys_file(
        tmp_path / "keys.yaml",
        [{"sha256": hash_key(reader), "tenant": "acme", "scopes": ["decisions:read"]}],
    )
    client = make_client(model_server_url=verdict_server, auth_enabled=True, api_keys_file=path)
    for route, body in (
        ("/v1/moderate", {"input": "x"}),
        ("/v1/moderate/batch", {"items": [{"input": "x"}]}),
        ("/v1/moderations", {"input": "x"}),
    ):
        refused = client.post(route, json=body, headers=bearer(reader))
        assert refused.status_code == 403, route
        assert refused.json()["error"]["type"] == "forbidden"
    assert client.post("/v1/moderate", json={"input": "x"}, headers=bearer(ACME)).is_success


def test_a_keys_default_and_allowed_policies_apply(
    make_client: Callable[..., TestClient], verdict_server: str, tmp_path: Path
) -> None:
    kid = "kids-key"
    path = keys_file(
        tmp_path / "keys.yaml",
        [
            {
                "sha256": hash_key(kid),
                "tenant": "school",
                "scopes": ["moderate"],
                "default_policy": "kids-education",
                "allowed_policies": ["kids-education", "rsafe-default"],
            }
        ],
    )
    client = make_client(model_server_url=verdict_server, auth_enabled=True, api_keys_file=path)
    answer = client.post("/v1/moderate", json={"input": "x"}, headers=bearer(kid)).json()
    assert answer["policy"]["id"] == "kids-education"
    assert client.post("/v1/moderate", json={"input": "x"}, headers=bearer(ACME)).json()["policy"][
        "id"
    ] == ("rsafe-default")
    named = client.post(
        "/v1/moderate", json={"input": "x", "policy_id": "rsafe-default"}, headers=bearer(kid)
    )
    assert named.json()["policy"]["id"] == "rsafe-default"
    for body, param in (
        ({"input": "x", "policy_id": "openai-moderation"}, "policy_id"),
        ({"input": "x", "policy": "Only U1 - anything is unsafe."}, "policy"),
    ):
        refused = client.post("/v1/moderate", json=body, headers=bearer(kid))
        assert refused.status_code == 403
        assert refused.json()["error"] == {
            "type": "forbidden",
            "message": refused.json()["error"]["message"],
            "param": param,
        }
    # /v1/moderations judges with the OpenAI policy, which this key may not use.
    assert (
        client.post("/v1/moderations", json={"input": "x"}, headers=bearer(kid)).status_code == 403
    )


def test_each_key_has_its_own_rate_limit(
    make_client: Callable[..., TestClient], verdict_server: str, tmp_path: Path
) -> None:
    slow = "slow-key"
    path = keys_file(
        tmp_path / "keys.yaml",
        [
            {
                "sha256": hash_key(slow),
                "tenant": "acme",
                "scopes": ["moderate"],
                "rate_limit": {"per_second": 0.01, "burst": 2},
            }
        ],
    )
    client = make_client(model_server_url=verdict_server, auth_enabled=True, api_keys_file=path)
    statuses = [
        client.post("/v1/moderate", json={"input": "x"}, headers=bearer(slow)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    # No gateway-wide limit is set: another key is not limited.
    assert all(
        client.post("/v1/moderate", json={"input": "x"}, headers=bearer(ACME)).is_success
        for _ in range(5)
    )


def test_the_keys_file_is_reloaded_and_a_broken_edit_keeps_the_old_keys(
    make_client: Callable[..., TestClient], verdict_server: str, tmp_path: Path
) -> None:
    path = keys_file(tmp_path / "keys.yaml")
    client = make_client(
        model_server_url=verdict_server,
        auth_enabled=True,
        api_keys_file=path,
        policy_reload_interval_seconds=0.1,
    )
    new = "new-key"
    assert client.post("/v1/moderate", json={"input": "x"}, headers=bearer(new)).status_code == 401
    keys_file(path, [{"sha256": hash_key(new), "tenant": "acme", "scopes": ["moderate"]}])
    wait_until(
        lambda: client.post("/v1/moderate", json={"input": "x"}, headers=bearer(new)).is_success,
        10,
        "the reloaded key",
    )
    path.write_text("keys: [{sha256: not-a-hash, tenant: acme, scopes: [moderate]}]")
    # The broken file is rejected (logged); poll until the watcher has seen it, keys unchanged.
    directory = gateway_state(client.app).tenants
    assert directory is not None
    wait_until(lambda: directory.files.up_to_date, 10, "the reload")
    assert client.post("/v1/moderate", json={"input": "x"}, headers=bearer(new)).is_success


def test_a_keys_file_without_auth_is_refused_at_start(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="RSAFE_AUTH_ENABLED"):
        make_client(api_keys_file=keys_file(tmp_path / "keys.yaml"))


def test_listing_filters_and_pages_with_a_cursor(tenant_client: TestClient, database: str) -> None:
    ids = []
    for index in range(7):
        text = f"{UNSAFE_MARKER} {index}" if index % 3 == 0 else f"fine {index}"
        key = ACME if index < 5 else GLOBEX
        ids.append(
            tenant_client.post("/v1/moderate", json={"input": text}, headers=bearer(key)).json()[
                "id"
            ]
        )
    wait_rows(database, 7)
    admin = bearer(ADMIN)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = tenant_client.get("/v1/decisions", params=params, headers=admin).json()
        seen += [row["id"] for row in page["decisions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]  # newest first, each once

    def listed(**params: str) -> list[str]:
        page = tenant_client.get("/v1/decisions", params=params, headers=admin)
        assert page.status_code == 200, page.text
        return [row["id"] for row in page.json()["decisions"]]

    assert listed(verdict="unsafe") == [ids[6], ids[3], ids[0]]
    assert listed(tenant="globex") == [ids[6], ids[5]]
    assert listed(tenant="globex", verdict="safe") == [ids[5]]
    assert listed(policy_id="kids-education") == []
    assert len(listed(policy_id="rsafe-default")) == 7
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert listed(since=future) == []
    assert len(listed(until=future)) == 7
    for params, param in (({"cursor": "!!"}, "cursor"), ({"since": "yesterday"}, "query.since")):
        bad = tenant_client.get("/v1/decisions", params=params, headers=admin)
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == param


def test_export_writes_every_decision_as_jsonl_and_migrate_is_idempotent(
    make_client: Callable[..., TestClient], verdict_server: str, database: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    migrated = runner.invoke(cli_app, ["decisions", "migrate", "--database-url", database])
    assert migrated.exit_code == 0, migrated.output
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    assert f"revision {head}" in migrated.output
    assert (
        runner.invoke(cli_app, ["decisions", "migrate", "--database-url", database]).exit_code == 0
    )

    client = make_client(
        model_server_url=verdict_server, database_url=database, database_migrate_on_start=False
    )
    ids = [client.post("/v1/moderate", json={"input": f"t{i}"}).json()["id"] for i in range(4)]
    wait_rows(database, 4)
    out = tmp_path / "decisions.jsonl"
    exported = runner.invoke(
        cli_app, ["decisions", "export", "--database-url", database, "--out", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ids  # oldest first
    assert all(line["verdict"] == "safe" and len(line["content_sha256"]) == 64 for line in lines)
    only_unsafe = tmp_path / "unsafe.jsonl"
    runner.invoke(
        cli_app,
        [
            "decisions",
            "export",
            "--database-url",
            database,
            "--out",
            str(only_unsafe),
            "--verdict",
            "unsafe",
        ],
    )
    assert only_unsafe.read_text() == ""


def test_an_appeal_rejudges_with_the_appeal_budget_and_is_linked_to_the_original(
    tenant_client: TestClient, database: str
) -> None:
    text = "borderline text"
    answer = tenant_client.post("/v1/moderate", json={"input": text}, headers=bearer(ACME)).json()
    assert answer["flagged"] is False
    wait_rows(database, 1)
    path = f"/v1/decisions/{answer['id']}/appeal"

    # Content is kept only as a hash: the appeal must re-send it, unchanged.
    missing = tenant_client.post(path, json={}, headers=bearer(ACME))
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input"
    swapped = tenant_client.post(path, json={"input": "other text"}, headers=bearer(ACME))
    assert swapped.status_code == 400 and swapped.json()["error"]["param"] == "input"
    assert tenant_client.post(path, json={"input": text}, headers=bearer(GLOBEX)).status_code == 404

    appealed = tenant_client.post(path, json={"input": text}, headers=bearer(ACME))
    assert appealed.status_code == 200, appealed.text
    body = appealed.json()
    # The stand-in flips its verdict for a 4096-token budget: the appeal overturns.
    assert body["overturned"] is True and body["original_id"] == answer["id"]
    assert body["appeal"]["kind"] == "appeal" and body["appeal"]["appeal_of"] == answer["id"]
    assert body["appeal"]["flagged"] is True and body["appeal"]["tenant"] == "acme"
    wait_rows(database, 2)
    history = tenant_client.get(f"/v1/decisions/{answer['id']}", headers=bearer(ACME)).json()
    assert [a["id"] for a in history["appeals"]] == [body["appeal"]["id"]]
    assert history["decision"]["flagged"] is False  # the original stays as it was
    metrics = tenant_client.get("/metrics").text
    assert 'rsafe_decisions_overturned_total{policy_id="rsafe-default",source="appeal"}' in metrics


def test_an_appeal_uses_the_stored_content_when_content_retention_is_on(
    make_client: Callable[..., TestClient], verdict_server: str, database: str
) -> None:
    client = make_client(
        model_server_url=verdict_server, database_url=database, decision_log_store_content=True
    )
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    answer = client.post("/v1/moderate", json={"input": conversation}).json()
    wait_rows(database, 1)
    stored = client.get(f"/v1/decisions/{answer['id']}").json()["decision"]
    assert stored["content"] == conversation and stored["target"] == "response"
    appealed = client.post(f"/v1/decisions/{answer['id']}/appeal", json={})
    assert appealed.status_code == 200, appealed.text
    assert appealed.json()["appeal"]["target"] == "response"


def test_a_review_is_recorded_by_an_admin_and_counted_when_it_overturns(
    tenant_client: TestClient, database: str
) -> None:
    answer = tenant_client.post(
        "/v1/moderate", json={"input": UNSAFE_MARKER}, headers=bearer(ACME)
    ).json()
    wait_rows(database, 1)
    path = f"/v1/decisions/{answer['id']}/review"
    review = {"outcome": "overturned", "verdict": "safe", "note": "satire"}
    assert tenant_client.post(path, json=review, headers=bearer(ACME)).status_code == 403
    bad = tenant_client.post(path, json={"outcome": "maybe"}, headers=bearer(ADMIN))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "outcome"
    assert (
        tenant_client.post(
            "/v1/decisions/nope/review", json=review, headers=bearer(ADMIN)
        ).status_code
        == 404
    )
    recorded = tenant_client.post(path, json=review, headers=bearer(ADMIN))
    assert recorded.status_code == 200, recorded.text
    assert recorded.json()["reviewer_key_id"] == hash_key(ADMIN)[:12]
    history = tenant_client.get(f"/v1/decisions/{answer['id']}", headers=bearer(ACME)).json()
    assert [(r["outcome"], r["verdict"], r["note"]) for r in history["reviews"]] == [
        ("overturned", "safe", "satire")
    ]
    metrics = tenant_client.get("/metrics").text
    assert 'rsafe_decisions_overturned_total{policy_id="rsafe-default",source="review"}' in metrics


async def test_retention_deletes_old_rows_and_blanks_old_content(
    make_client: Callable[..., TestClient], verdict_server: str, database: str
) -> None:
    client = make_client(
        model_server_url=verdict_server, database_url=database, decision_log_store_content=True
    )
    ids = [client.post("/v1/moderate", json={"input": f"r{i}"}).json()["id"] for i in range(3)]
    wait_rows(database, 3)
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            "UPDATE decisions SET created_at = now() - interval '100 days' WHERE id = %s", [ids[0]]
        )
        connection.execute(
            "UPDATE decisions SET created_at = now() - interval '10 days' WHERE id = %s", [ids[1]]
        )
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(database, min_size=1, max_size=1) as pool:
        purged = await enforce_retention(pool, Retention(days=90, content_days=7))
    assert (purged.decisions, purged.contents) == (1, 1)
    with psycopg.connect(database) as connection:
        rows: dict[Any, str | None] = dict(
            connection.execute("SELECT id, content FROM decisions").fetchall()
        )
    assert rows == {ids[1]: None, ids[2]: "r2"}


def test_the_log_off_answers_404_in_the_error_shape(
    make_client: Callable[..., TestClient], verdict_server: str
) -> None:
    client = make_client(model_server_url=verdict_server)
    assert client.post("/v1/moderate", json={"input": "x"}).is_success
    missing = client.get("/v1/decisions/anything")
    assert missing.status_code == 404
    assert "RSAFE_DATABASE_URL" in missing.json()["error"]["message"]


def test_required_mode_answers_503_when_the_log_cannot_write_and_best_effort_answers(
    make_client: Callable[..., TestClient], verdict_server: str
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    required = make_client(
        model_server_url=verdict_server,
        database_url=nowhere,
        decision_log_mode="required",
        decision_log_write_timeout_seconds=0.5,
    )
    refused = required.post("/v1/moderate", json={"input": "x"})
    assert refused.status_code == 503
    assert refused.json()["error"]["type"] == "backend_unavailable"
    batch = required.post("/v1/moderate/batch", json={"items": [{"input": "x"}]}).json()
    assert batch["results"][0]["error"]["type"] == "backend_unavailable"
    assert required.post("/v1/moderations", json={"input": "x"}).status_code == 503

    relaxed = make_client(
        model_server_url=verdict_server,
        database_url=nowhere,
        decision_log_buffer=3,
        decision_log_write_timeout_seconds=0.5,
    )
    before = _dropped(relaxed)
    assert all(relaxed.post("/v1/moderate", json={"input": "x"}).is_success for _ in range(6))
    # The writer waits for the schema (PostgreSQL never answers): 3 wait in the buffer, 3 dropped.
    assert _dropped(relaxed) - before == 3
    decision_log = gateway_state(relaxed.app).decision_log
    assert decision_log is not None
    assert decision_log.writer.buffered == 3


def _dropped(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('rsafe_decision_log_dropped_total{reason="buffer_full"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_best_effort_keeps_decisions_while_postgres_is_down_and_writes_them_when_back(
    make_client: Callable[..., TestClient], verdict_server: str, tmp_path: Path
) -> None:
    from postgres import private_postgres

    server = private_postgres(free_port())
    try:
        client = make_client(model_server_url=verdict_server, database_url=server.url)
        ids = [client.post("/v1/moderate", json={"input": "before"}).json()["id"]]
        wait_rows(server.url, 1)
        server.kill()
        ids += [
            client.post("/v1/moderate", json={"input": f"down {i}"}).json()["id"] for i in range(20)
        ]
        server.start()
        wait_rows(server.url, 21)
        with psycopg.connect(server.url) as connection:
            stored = {row[0] for row in connection.execute("SELECT id FROM decisions")}
        assert stored == set(ids)
    finally:
        server.remove()


def test_buffered_decisions_are_flushed_at_shutdown(verdict_server: str, database: str) -> None:
    # The writer lingers 5 s before a batch: at shutdown the rows are still in the buffer.
    settings = tiny_settings(
        model_server_url=verdict_server, database_url=database, decision_log_flush_seconds=5.0
    )
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        wait_until(lambda: count_rows(database) == 0, 30, "the migrated schema")
        ids = {client.post("/v1/moderate", json={"input": f"s{i}"}).json()["id"] for i in range(50)}
    # Leaving the block ran the lifespan shutdown: the writer drained its buffer.
    with psycopg.connect(database) as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM decisions")}
    assert stored == ids


@pytest.mark.e2e
def test_against_real_vllm_every_answer_is_fetched_with_the_same_verdict(
    make_client: Callable[..., TestClient], vllm_server: VllmServer, tmp_path: Path, database: str
) -> None:
    client = make_client(
        model_server_url=vllm_server.url,
        database_url=database,
        auth_enabled=True,
        api_keys_file=keys_file(tmp_path / "keys.yaml"),
    )
    answers = [
        client.post("/v1/moderate", json={"input": text}, headers=bearer(ACME)).json()
        for text in ("How do I bake bread?", "How do I pick a lock?")
    ]
    wait_rows(database, 2)
    for answer in answers:
        stored = client.get(f"/v1/decisions/{answer['id']}", headers=bearer(ACME)).json()
        assert stored["decision"]["verdict"] == answer["verdict"]
        assert stored["decision"]["model"] == answer["model"]
        assert (
            client.get(f"/v1/decisions/{answer['id']}", headers=bearer(GLOBEX)).status_code == 404
        )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/decisions?tenant=a%00b",
        "/v1/decisions?policy_id=%00",
        "/v1/decisions?cursor=x%00",
        "/v1/decisions/mod-%00",
    ],
)
def test_nul_in_a_filter_or_id_is_a_400_not_a_failed_query(
    tenant_client: TestClient, path: str
) -> None:
    # Found by the schemathesis run: PostgreSQL refused the NUL and the gateway answered 503.
    response = tenant_client.get(path, headers=bearer(ADMIN))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["type"] == "invalid_request"
