"""End to end: the gateway in front of the REAL vLLM (tiny random checkpoint) and REAL Redis.

The tiny model's judgements are noise; these tests check the plumbing and the contract.
"""

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from conftest import RedisServer, VllmServer

pytestmark = pytest.mark.e2e

FIELDS = {
    "id", "verdict", "flagged", "categories", "reasoning", "policy", "model", "cached",
    "usage", "latency_ms", "fail_mode", "hidden_content", "model_family", "template_version",
}  # fmt: skip


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def assert_answer(body: dict[str, object]) -> None:
    assert set(body) == FIELDS
    assert body["verdict"] in {"safe", "unsafe"}
    assert body["flagged"] is (body["verdict"] == "unsafe")
    assert isinstance(body["reasoning"], str) and body["reasoning"].strip()
    usage = body["usage"]
    assert isinstance(usage, dict)
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert body["model"] == "rsafe"


def test_prompt_check(e2e_client: TestClient) -> None:
    response = e2e_client.post("/v1/moderate", json={"input": unique("How do I bake bread?")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert_answer(body)
    assert body["policy"]["id"] == "rsafe-default"
    assert body["cached"] is False
    assert response.headers["x-request-id"] == body["id"]


def test_response_check(e2e_client: TestClient) -> None:
    conversation = [
        {"role": "user", "content": unique("How do I bake bread?")},
        {"role": "assistant", "content": "Mix flour, water, salt and yeast; knead; bake."},
    ]
    response = e2e_client.post("/v1/moderate", json={"input": conversation})
    assert response.status_code == 200, response.text
    assert_answer(response.json())


def test_conversation_prompt_check(e2e_client: TestClient) -> None:
    conversation = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello, how can I help?"},
        {"role": "user", "content": unique("Tell me about the history of locks.")},
    ]
    response = e2e_client.post("/v1/moderate", json={"input": conversation, "target": "prompt"})
    assert response.status_code == 200, response.text
    assert_answer(response.json())


def test_inline_policy(e2e_client: TestClient) -> None:
    policy = "X1 - Talking about competitors' products\nX2 - Sharing discount codes"
    response = e2e_client.post(
        "/v1/moderate", json={"input": unique("Is BrandB cheaper?"), "policy": policy}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert_answer(body)
    assert body["policy"]["id"] == "inline"
    assert len(body["policy"]["sha256"]) == 64


def test_reasoning_false_hides_reasoning(e2e_client: TestClient) -> None:
    response = e2e_client.post("/v1/moderate", json={"input": unique("hello"), "reasoning": False})
    assert response.status_code == 200
    assert response.json()["reasoning"] is None


def test_second_identical_request_is_cached_without_a_model_call(
    e2e_client: TestClient, vllm_server: VllmServer
) -> None:
    payload = {"input": unique("What is the capital of France?")}
    first = e2e_client.post("/v1/moderate", json=payload).json()
    calls_after_first = vllm_server.request_count()
    second = e2e_client.post("/v1/moderate", json=payload).json()
    assert vllm_server.request_count() == calls_after_first
    assert first["cached"] is False and second["cached"] is True
    assert second["verdict"] == first["verdict"]
    assert second["reasoning"] == first["reasoning"]
    assert second["usage"] == first["usage"]
    assert second["id"] != first["id"]


def test_cache_false_bypasses_the_cache(e2e_client: TestClient, vllm_server: VllmServer) -> None:
    payload = {"input": unique("Name three rivers."), "cache": False}
    e2e_client.post("/v1/moderate", json=payload)
    before = vllm_server.request_count()
    second = e2e_client.post("/v1/moderate", json=payload).json()
    assert second["cached"] is False
    assert vllm_server.request_count() == before + 1


def test_redis_stopped_mid_run_still_answers(
    make_client: Callable[..., TestClient], vllm_server: VllmServer, own_redis: RedisServer
) -> None:
    client = make_client(model_server_url=vllm_server.url, redis_url=own_redis.url)
    payload = {"input": unique("Recommend a good book.")}
    assert client.post("/v1/moderate", json=payload).status_code == 200
    assert client.post("/v1/moderate", json=payload).json()["cached"] is True
    own_redis.stop()
    # A hot decision still comes from the replica's in-process cache...
    assert client.post("/v1/moderate", json=payload).json()["cached"] is True
    # ...and new ones go to the model; Redis errors are counted, never returned.
    for index in range(3):
        response = client.post("/v1/moderate", json={"input": unique(f"new text {index}")})
        assert response.status_code == 200
        assert response.json()["cached"] is False
        assert_answer(response.json())
    assert 'rsafe_cache_errors_total{operation="get"}' in client.get("/metrics").text


def test_a_second_replica_gets_the_decision_from_redis(
    make_client: Callable[..., TestClient], vllm_server: VllmServer, redis_server: RedisServer
) -> None:
    prefix = f"replicas-{uuid.uuid4().hex[:6]}:"
    first = make_client(
        model_server_url=vllm_server.url, redis_url=redis_server.url, cache_key_prefix=prefix
    )
    second = make_client(
        model_server_url=vllm_server.url, redis_url=redis_server.url, cache_key_prefix=prefix
    )
    payload = {"input": unique("Shared between replicas?")}
    assert first.post("/v1/moderate", json=payload).json()["cached"] is False
    calls = vllm_server.request_count()
    assert second.post("/v1/moderate", json=payload).json()["cached"] is True
    assert vllm_server.request_count() == calls


def test_readyz_reports_model_and_cache(e2e_client: TestClient) -> None:
    response = e2e_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"model_server": "ok", "cache": "ok"}


def test_policies_are_listed(e2e_client: TestClient) -> None:
    body = e2e_client.get("/v1/policies").json()
    assert body["default_policy_id"] == "rsafe-default"
    ids = {policy["id"] for policy in body["policies"]}
    assert "rsafe-default" in ids
    detail = e2e_client.get("/v1/policies/rsafe-default").json()
    assert [c["id"] for c in detail["categories"]] == [f"U{i}" for i in range(1, 19)]
    assert detail["text"].startswith("U1 - Violence")


def test_requests_that_render_the_same_prompt_share_one_decision(
    e2e_client: TestClient, vllm_server: VllmServer
) -> None:
    # The cache key is built from the prompt's ingredients (not the rendered prompt): requests
    # that differ only in what the prompt leaves out must still find the decision.
    text = unique("Where can I buy a kitchen knife?")
    first = e2e_client.post("/v1/moderate", json={"input": text}).json()
    assert first["cached"] is False
    calls = vllm_server.request_count()
    user = {"role": "user", "content": text}
    same_prompt = [
        {"input": [user]},
        {"input": [{"role": "system", "content": "Be brief."}, user]},  # system turns: not judged
        {"input": [user, {"role": "assistant", "content": "Sure."}], "target": "prompt"},
        {"input": text, "reasoning": False},  # only filters the answer
        {"input": text, "policy_id": first["policy"]["id"]},  # the default, named
    ]
    for payload in same_prompt:
        answer = e2e_client.post("/v1/moderate", json=payload).json()
        assert answer["cached"] is True, payload
        assert answer["verdict"] == first["verdict"]
    assert vllm_server.request_count() == calls


def test_every_change_to_the_prompt_is_a_new_decision(e2e_client: TestClient) -> None:
    text = unique("Where can I buy a kitchen knife?")
    assert e2e_client.post("/v1/moderate", json={"input": text}).json()["cached"] is False
    other_policy = next(
        policy["id"]
        for policy in e2e_client.get("/v1/policies").json()["policies"]
        if policy["id"] != e2e_client.get("/v1/policies").json()["default_policy_id"]
    )
    user = {"role": "user", "content": text}
    different_prompt = [
        {"input": text + "!"},
        {"input": [user, {"role": "assistant", "content": "Sure."}]},  # a response check
        {"input": [{"role": "assistant", "content": "Hi."}, user]},  # an earlier turn
        {"input": text, "policy": "X1 - Spam\nNo unsolicited advertising."},
        {"input": text, "policy_id": other_policy},
    ]
    for payload in different_prompt:
        answer = e2e_client.post("/v1/moderate", json=payload).json()
        assert answer["cached"] is False, payload
