"""POST /v1/moderate/batch and the OpenAI-compatible POST /v1/moderations (real vLLM + Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from conftest import GatewayProcess, VllmServer
from rsafe_gateway.openai_compat import OPENAI_CATEGORIES

pytestmark = pytest.mark.e2e


def test_batch_keeps_order_and_puts_errors_in_place(e2e_client: TestClient) -> None:
    tag = uuid.uuid4().hex
    items = [
        {"input": f"first {tag}"},
        {"input": ""},
        {"input": [{"role": "user", "content": f"q {tag}"}, {"role": "assistant", "content": "a"}]},
        {"input": [{"role": "robot", "content": "x"}]},
        {"input": f"fifth {tag}", "policy_id": "no-such-policy"},
        {"input": f"sixth {tag}", "policy_id": "kids-education"},
        "not even an object",
    ]
    response = e2e_client.post("/v1/moderate/batch", json={"items": items[:-1]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 6
    assert results[0]["verdict"] in {"safe", "unsafe"}
    assert results[1]["error"]["param"] == "items[1].input"
    assert (
        results[2]["verdict"] in {"safe", "unsafe"}
        and results[2]["policy"]["id"] == "rsafe-default"
    )
    assert results[3]["error"]["param"] == "items[3].input[0].role"
    assert results[4]["error"] == {
        "type": "invalid_request",
        "message": "unknown policy_id 'no-such-policy'",
        "param": "items[4].policy_id",
    }
    assert results[5]["policy"]["id"] == "kids-education"
    ids = [r["id"] for r in results if "id" in r]
    assert len(set(ids)) == 3 and all(i.startswith(response.headers["x-request-id"]) for i in ids)
    # A non-object item fails the batch's own schema.
    bad = e2e_client.post("/v1/moderate/batch", json={"items": items})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "items[6]"


def test_batch_limits(make_client: Callable[..., TestClient], vllm_server: VllmServer) -> None:
    client = make_client(model_server_url=vllm_server.url, max_batch_items=3)
    too_many = client.post("/v1/moderate/batch", json={"items": [{"input": "x"}] * 4})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "items"
    empty = client.post("/v1/moderate/batch", json={"items": []})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "items"


def test_batch_items_are_judged_concurrently_in_one_model_batch(
    e2e_client: TestClient, vllm_server: VllmServer
) -> None:
    tag = uuid.uuid4().hex
    before = vllm_server.request_count()
    response = e2e_client.post(
        "/v1/moderate/batch", json={"items": [{"input": f"item {i} {tag}"} for i in range(8)]}
    )
    assert [r["verdict"] in {"safe", "unsafe"} for r in response.json()["results"]] == [True] * 8
    assert vllm_server.request_count() - before == 8


def test_official_openai_client_works_unchanged(gateway_process: GatewayProcess) -> None:
    with OpenAI(base_url=f"{gateway_process.url}/v1", api_key="unused-locally") as client:
        single = client.moderations.create(input=f"How do I pick a lock? {uuid.uuid4().hex}")
        many = client.moderations.create(input=["one", "two", "three"], model="anything")
    assert len(single.results) == 1
    result = single.results[0]
    assert isinstance(result.flagged, bool)
    categories = result.categories.model_dump(by_alias=True)
    assert set(categories) == set(OPENAI_CATEGORIES)
    scores = result.category_scores.model_dump(by_alias=True)
    assert all(score in (0.0, 1.0) for score in scores.values())
    assert all(scores[name] == (1.0 if flagged else 0.0) for name, flagged in categories.items())
    assert len(many.results) == 3
    assert many.model == "rsafe"
