"""The proxy's checks in the decision log, against a real PostgreSQL: every input and window check
is a row under its check id with the caller's tenant and key, the route, the target and the
verdict the client saw; another tenant cannot read it; in `required` mode a check that cannot be
put on record releases nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from rsafe_core.formats import guard_format

from conftest import free_port, tiny_settings, wait_until
from postgres import ensure_shared_postgres, scratch_database
from rsafe_gateway.tenants import hash_key

from .conftest import GatewayFactory
from .helpers import chat_body, error_of, stream_chat
from .standins import MARKER, UNSAFE_SENTENCE, Standins

ACME, GLOBEX = "acme-proxy-key", "globex-proxy-key"
ROUTE = "/v1/chat/completions"


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database(ensure_shared_postgres()) as url:
        yield url


def _keys_file(path: Path) -> Path:
    scopes = ["moderate", "decisions:read"]
    entries = [
        {"sha256": hash_key(ACME), "tenant": "acme", "scopes": scopes},
        {"sha256": hash_key(GLOBEX), "tenant": "globex", "scopes": scopes},
    ]
    path.write_text(json.dumps({"keys": entries}))  # JSON is YAML
    return path


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _rows(database: str, request_id: str) -> dict[str, dict[str, Any]]:
    """The logged checks of one proxied request, by id."""
    with psycopg.connect(database, row_factory=dict_row) as connection:
        rows = connection.execute(
            "SELECT * FROM decisions WHERE id LIKE %s", [f"{request_id}-%"]
        ).fetchall()
    return {row["id"]: row for row in rows}


def _wait_for_row(database: str, request_id: str, check_id: str) -> dict[str, dict[str, Any]]:
    def logged() -> bool:
        try:
            return check_id in _rows(database, request_id)
        except psycopg.errors.UndefinedTable:  # still migrating
            return False

    wait_until(logged, 15, f"the row of check {check_id}")
    return _rows(database, request_id)


@pytest.fixture
def gateway(make_gateway: GatewayFactory, standins: Standins, database: str, tmp_path: Path) -> str:
    standins.token_delay = 0.01  # the cut lands while the upstream still streams
    return make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, database_url=database,
        auth_enabled=True, api_keys_file=_keys_file(tmp_path / "keys.yaml"),
    )  # fmt: skip


def test_every_check_of_a_cut_stream_is_a_decision_of_the_callers_tenant(
    gateway: str, database: str
) -> None:
    streamed = stream_chat(gateway, chat_body("unsafe"), headers=_bearer(ACME))
    assert streamed.status == 200 and MARKER not in streamed.text
    request_id = streamed.headers["x-request-id"]
    cut = streamed.last["rsafe"]["decision"]
    assert cut["verdict"] == "unsafe" and cut["check_id"].startswith(f"{request_id}-w")
    rows = _wait_for_row(database, request_id, cut["check_id"])

    guard = guard_format(tiny_settings().model_family)  # the family the gateway serves
    for row in rows.values():
        assert row["route"] == ROUTE and row["kind"] == "decision"
        assert (row["tenant"], row["key_id"]) == ("acme", hash_key(ACME)[:12])
        assert row["policy_id"] == "rsafe-default"
        assert (row["model_family"], row["template_version"]) == (
            guard.family,
            guard.template_version,
        )
        assert row["content"] is None and len(row["content_sha256"]) == 64
    entry = rows[f"{request_id}-in"]
    assert (entry["target"], entry["verdict"], entry["flagged"]) == ("prompt", "safe", False)
    # Every window up to the cut one was judged and logged, in order; the cut one as the client
    # was told. (Windows after it may have been in flight when the stream was cut.)
    cut_index = int(cut["check_id"].rsplit("-w", 1)[1])
    assert cut_index >= 1
    for index in range(cut_index + 1):
        window = rows[f"{request_id}-w{index}"]
        assert window["target"] == "response"
        assert window["verdict"] == ("unsafe" if index == cut_index else "safe")
    cut_row = rows[cut["check_id"]]
    assert cut_row["flagged"] is True and cut_row["categories"] == cut["categories"] == ["U1"]
    assert cut_row["policy_sha256"] == cut["policy"]["sha256"]

    # The public API gives the owner the same decision; another tenant gets a 404.
    url = f"{gateway}/v1/decisions/{cut['check_id']}"
    own = httpx.get(url, headers=_bearer(ACME), timeout=10)
    assert own.status_code == 200
    assert own.json()["decision"]["verdict"] == "unsafe"
    assert own.json()["decision"]["model_family"] == guard.family
    other = httpx.get(url, headers=_bearer(GLOBEX), timeout=10)
    assert other.status_code == 404 and error_of(other)["type"] == "invalid_request"


def test_a_blocked_prompt_and_a_non_streamed_answer_are_logged_too(
    gateway: str, database: str, standins: Standins
) -> None:
    body = chat_body("safe", stream=False, messages=[{"role": "user", "content": f"{MARKER} it"}])
    blocked = httpx.post(f"{gateway}{ROUTE}", json=body, headers=_bearer(GLOBEX), timeout=30)
    assert blocked.json()["choices"][0]["finish_reason"] == "content_filter"
    blocked_id = blocked.headers["x-request-id"]
    rows = _wait_for_row(database, blocked_id, f"{blocked_id}-in")
    assert list(rows) == [f"{blocked_id}-in"]  # no upstream call, so no output check
    assert rows[f"{blocked_id}-in"]["verdict"] == "unsafe"
    assert rows[f"{blocked_id}-in"]["tenant"] == "globex"
    assert standins.records == []

    answered = httpx.post(
        f"{gateway}{ROUTE}", json=chat_body("safe", stream=False), headers=_bearer(ACME), timeout=30
    )
    assert answered.status_code == 200
    answered_id = answered.headers["x-request-id"]
    rows = _wait_for_row(database, answered_id, f"{answered_id}-w0")
    windows = sorted(row_id for row_id in rows if "-w" in row_id)
    assert len(windows) >= 2  # the whole answer, judged in windows
    assert {rows[row_id]["verdict"] for row_id in windows} == {"safe"}


def test_required_mode_releases_nothing_a_check_could_not_put_on_record(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    sequential = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, database_url=nowhere,
        decision_log_mode="required", decision_log_write_timeout_seconds=0.3,
    )  # fmt: skip
    for stream in (True, False):
        refused = httpx.post(f"{sequential}{ROUTE}", json=chat_body(stream=stream), timeout=30)
        assert refused.status_code == 503
        assert error_of(refused)["type"] == "backend_unavailable"
    assert standins.records == []  # the input check was not on record: no upstream call

    # In parallel mode the upstream starts at once; its reply still never reaches the client.
    parallel = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, database_url=nowhere,
        decision_log_mode="required", decision_log_write_timeout_seconds=0.3,
        proxy_input_check="parallel",
    )  # fmt: skip
    streamed = stream_chat(parallel, chat_body("unsafe"))
    assert streamed.status == 200 and streamed.payloads[-1] == "[DONE]"
    assert streamed.text == "" and UNSAFE_SENTENCE.strip() not in streamed.text
    assert streamed.last["error"]["type"] == "backend_unavailable"
    non_streamed = httpx.post(f"{parallel}{ROUTE}", json=chat_body(stream=False), timeout=30)
    assert non_streamed.status_code == 503
