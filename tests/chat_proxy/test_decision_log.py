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
from rsafe_gateway.chat_proxy.windows import WindowCutter
from rsafe_gateway.tenants import hash_key

from .conftest import GatewayFactory
from .helpers import chat_body, error_of, stream_chat
from .standins import MARKER, SAFE_REPLY, UNSAFE_SENTENCE, Standins

ACME, GLOBEX = "acme-proxy-key", "globex-proxy-key"
ROUTE = "/v1/chat/completions"


@pytest.fixture
def database() -> Iterator[str]:
    with scratch_database(ensure_shared_postgres()) as url:
        yield url


READ_ONLY, KIDS_ONLY = "read-only-proxy-key", "kids-only-proxy-key"


def _keys_file(path: Path) -> Path:
    scopes = ["moderate", "decisions:read"]
    entries = [
        {"sha256": hash_key(ACME), "tenant": "acme", "scopes": scopes},
        {"sha256": hash_key(GLOBEX), "tenant": "globex", "scopes": scopes},
        {"sha256": hash_key(READ_ONLY), "tenant": "acme", "scopes": ["decisions:read"]},
        {
            "sha256": hash_key(KIDS_ONLY), "tenant": "kids", "scopes": ["moderate"],
            "default_policy": "kids-education", "allowed_policies": ["kids-education"],
        },
    ]  # fmt: skip
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


def _wait_for_rows(database: str, request_id: str, *check_ids: str) -> dict[str, dict[str, Any]]:
    """The rows of `request_id` once those of `check_ids` are all written (checks run
    concurrently: their rows may land in different batches)."""

    def logged() -> bool:
        try:
            return set(check_ids) <= set(_rows(database, request_id))
        except psycopg.errors.UndefinedTable:  # still migrating
            return False

    wait_until(logged, 15, f"the rows of checks {check_ids}")
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
    cut_index = int(cut["check_id"].rsplit("-w", 1)[1])
    windows = [f"{request_id}-w{index}" for index in range(cut_index + 1)]
    rows = _wait_for_rows(database, request_id, f"{request_id}-in", *windows)

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
    assert cut_index >= 1
    for index, window_id in enumerate(windows):
        window = rows[window_id]
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
    rows = _wait_for_rows(database, blocked_id, f"{blocked_id}-in")
    assert list(rows) == [f"{blocked_id}-in"]  # no upstream call, so no output check
    assert rows[f"{blocked_id}-in"]["verdict"] == "unsafe"
    assert rows[f"{blocked_id}-in"]["tenant"] == "globex"
    assert standins.records == []

    answered = httpx.post(
        f"{gateway}{ROUTE}", json=chat_body("safe", stream=False), headers=_bearer(ACME), timeout=30
    )
    assert answered.status_code == 200
    answered_id = answered.headers["x-request-id"]
    # The whole answer, judged in windows (the sizes of the `make_gateway` fixture): each a row.
    cutter = WindowCutter(40, 80)
    count = len([*cutter.feed(SAFE_REPLY), *cutter.finish()])
    assert count >= 2
    windows = [f"{answered_id}-w{index}" for index in range(count)]
    rows = _wait_for_rows(database, answered_id, *windows)
    assert set(rows) == {f"{answered_id}-in", *windows}
    assert {rows[row_id]["verdict"] for row_id in windows} == {"safe"}


def test_the_keys_scope_and_policies_apply_to_the_proxy_as_to_moderate(
    gateway: str, database: str, standins: Standins
) -> None:
    refused = httpx.post(f"{gateway}{ROUTE}", json=chat_body(), headers=_bearer(READ_ONLY))
    assert refused.status_code == 403 and error_of(refused)["type"] == "forbidden"
    # A policy the key may not use is a 403 before any check (not a guard failure, which the
    # fail mode could turn into a released reply).
    other = chat_body(rsafe={"policy_id": "financial-services"})
    refused = httpx.post(f"{gateway}{ROUTE}", json=other, headers=_bearer(KIDS_ONLY), timeout=30)
    assert refused.status_code == 403 and error_of(refused)["type"] == "forbidden"
    assert standins.records == [] and standins.guard_prompts == []
    # Naming none, the key's own default policy judges both sides.
    streamed = stream_chat(gateway, chat_body("unsafe"), headers=_bearer(KIDS_ONLY))
    request_id = streamed.headers["x-request-id"]
    assert streamed.last["rsafe"]["decision"]["policy"]["id"] == "kids-education"
    rows = _wait_for_rows(database, request_id, f"{request_id}-in", f"{request_id}-w0")
    assert {row["policy_id"] for row in rows.values()} == {"kids-education"}
    assert {row["tenant"] for row in rows.values()} == {"kids"}


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
