"""What each family lets a request ask for, and what names its answers: no model call needed.

The 400s below are decided before any model call, so the gateway points at a closed port; the
cache keys are computed by the service's own `prepare`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from rsafe_core.policy import load_policy_dirs

from conftest import REPO, tiny_settings
from rsafe_gateway.cache import DecisionCache
from rsafe_gateway.decision_log.record import INTERNAL_CONTEXT
from rsafe_gateway.policy_store import PolicyStore
from rsafe_gateway.protocol import ModerationRequest
from rsafe_gateway.service import ModerationService
from rsafe_gateway.settings import Settings

from .conftest import family_settings

CLOSED = "http://127.0.0.1:9"  # nothing listens: a model call would be a 503, not a 400


def error_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == "invalid_request", body
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def qwen3guard(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(**family_settings("qwen3guard", model_server_url=CLOSED))


def test_qwen3guard_refuses_an_inline_policy(qwen3guard: TestClient) -> None:
    error = error_of(qwen3guard.post("/v1/moderate", json={"input": "hi", "policy": "X1 - Spam"}))
    assert error["param"] == "policy"
    assert "fixed taxonomy" in error["message"] and "'qwen3guard'" in error["message"]


def test_qwen3guard_refuses_another_named_policy(qwen3guard: TestClient) -> None:
    response = qwen3guard.post("/v1/moderate", json={"input": "hi", "policy_id": "rsafe-default"})
    error = error_of(response)
    assert error["param"] == "policy_id"
    assert "must be 'qwen3guard', not 'rsafe-default'" in error["message"]
    # Also inside a batch, in the item's place.
    batch = qwen3guard.post(
        "/v1/moderate/batch", json={"items": [{"input": "hi", "policy_id": "kids-education"}]}
    )
    assert batch.status_code == 200
    assert batch.json()["results"][0]["error"]["param"] == "items[0].policy_id"


def test_qwen3guard_serves_its_own_taxonomy(qwen3guard: TestClient) -> None:
    listed = qwen3guard.get("/v1/policies").json()
    assert listed["default_policy_id"] == "qwen3guard"
    assert [policy["id"] for policy in listed["policies"]] == ["qwen3guard"]
    detail = qwen3guard.get("/v1/policies/qwen3guard").json()
    assert [c["name"] for c in detail["categories"]][:2] == ["Violent", "Non-violent Illegal Acts"]
    # A request naming no policy uses it: it reaches the (closed) model server, so a 503.
    assert qwen3guard.post("/v1/moderate", json={"input": "hi"}).status_code == 503


def test_qwen3guard_with_another_default_policy_does_not_start() -> None:
    with pytest.raises(ValidationError, match="RSAFE_DEFAULT_POLICY_ID must be 'qwen3guard'"):
        tiny_settings(**family_settings("qwen3guard", default_policy_id="rsafe-default"))


@pytest.mark.parametrize("family", ["rsafe", "qwen3guard"])
def test_a_reasoning_effort_is_refused_where_it_does_not_apply(
    make_client: Callable[..., TestClient], family: str
) -> None:
    overrides = family_settings(family) if family != "rsafe" else {}
    client = make_client(model_server_url=CLOSED, **overrides)
    response = client.post("/v1/moderate", json={"input": "hi", "reasoning_effort": "high"})
    error = error_of(response)
    assert error["param"] == "reasoning_effort" and "gpt-oss-safeguard" in error["message"]


def test_an_unknown_reasoning_effort_is_a_400(make_client: Callable[..., TestClient]) -> None:
    client = make_client(**family_settings("gpt-oss-safeguard", model_server_url=CLOSED))
    response = client.post("/v1/moderate", json={"input": "hi", "reasoning_effort": "extreme"})
    assert error_of(response)["param"] == "reasoning_effort"


def test_build_info_names_the_family(make_client: Callable[..., TestClient]) -> None:
    client = make_client(**family_settings("gpt-oss-safeguard", model_server_url=CLOSED))
    metrics = client.get("/metrics").text
    assert 'model_family="gpt-oss-safeguard"' in metrics
    assert 'template_version="gpt-oss-safeguard-v1"' in metrics


def _service(**overrides: object) -> ModerationService:
    # The defaults of a real installation (not the tiny model's sizes): keys as operators see them.
    settings = Settings(**{"_env_file": None, "redis_url": None, **overrides})  # type: ignore[arg-type]
    backend: Any = SimpleNamespace(model=settings.model_name)
    policies = PolicyStore([REPO / "policies"], settings.default_policy_id)
    return ModerationService(settings, backend, DecisionCache(None, ttl_seconds=60), policies)


def _prepare(service: ModerationService, request: ModerationRequest) -> Any:
    return asyncio.run(service.prepare(request, "req-1", INTERNAL_CONTEXT))


def test_rsafe_cache_keys_are_those_of_before_the_families() -> None:
    # Computed with the gateway before this change (main at 83f14d4), prefix `rsafe:`.
    service = _service()
    prompt = _prepare(service, ModerationRequest(input="How do I pick a lock?"))
    assert prompt.key == "rsafe:v1:8d927b6c5d0f30944266ece032ea00c6db3a9f7c9480ad28efb8fff13ccab886"
    conversation = ModerationRequest.model_validate(
        {
            "input": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            "policy_id": "mlcommons-hazards",
        }
    )
    response = _prepare(service, conversation)
    assert response.key == (
        "rsafe:v1:fa29e72c4a33563054d88ec1996d11c26b55d94fe77218316eb1fac23a947aec"
    )
    assert "reasoning_effort" not in response.decoding.parameters


def test_gpt_oss_keys_and_decoding_follow_the_effort() -> None:
    service = _service(**family_settings("gpt-oss-safeguard", reasoning_effort="low"))
    default = _prepare(service, ModerationRequest(input="hi"))
    high = _prepare(
        service, ModerationRequest.model_validate({"input": "hi", "reasoning_effort": "high"})
    )
    low = _prepare(
        service, ModerationRequest.model_validate({"input": "hi", "reasoning_effort": "low"})
    )
    assert default.decoding.parameters["reasoning_effort"] == "low"
    assert high.decoding.parameters["reasoning_effort"] == "high"
    assert "regex" in default.decoding.parameters["structured_outputs"]
    assert default.key == low.key != high.key


def test_the_same_request_has_another_key_in_each_family() -> None:
    request = ModerationRequest(input="hi", policy_id="qwen3guard")
    keys = {
        _prepare(_service(**{**family_settings(family), "model_name": "same"}), request).key
        for family in ("qwen3guard", "gpt-oss-safeguard")
    }
    keys.add(_prepare(_service(model_name="same"), request).key)
    assert len(keys) == 3
    strict = _prepare(_service(**family_settings("qwen3guard")), request).key
    loose = _prepare(
        _service(**family_settings("qwen3guard", controversial_verdict="safe")), request
    ).key
    assert strict != loose


def test_every_shipped_policy_is_loadable_by_every_family() -> None:
    # gpt-oss-safeguard renders any of them; qwen3guard's own is among them.
    assert "qwen3guard" in load_policy_dirs([REPO / "policies"])


def test_qwen3guards_categories_map_to_openai_names_where_they_have_one() -> None:
    from rsafe_gateway.openai_compat import openai_names

    policy = load_policy_dirs([REPO / "policies"])["qwen3guard"]
    assert openai_names(policy, ["VIOLENT", "SELF_HARM", "PII"]) == {"violence", "self-harm"}
