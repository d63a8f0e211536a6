"""Faults around the proxy: the upstream down, hanging, answering 500 or its own 4xx, stalling or
failing mid-stream; the guard failing (fail-closed cuts, fail-open marks); the other release and
input-check modes; the proxy off; API keys, rate limits and body limits on its route."""

from __future__ import annotations

import hashlib

import httpx
import openai
import pytest

from conftest import free_port

from .conftest import GatewayFactory, metric
from .helpers import USER, chat_body, error_of, stream_chat
from .standins import MARKER, SAFE_REPLY, UNSAFE_REPLY, Standins, wait_for


def post(gateway: str, body: dict[str, object], **kwargs: object) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=30, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def gateway(make_gateway: GatewayFactory, standins: Standins) -> str:
    return make_gateway(
        model_server_url=standins.guard_url,
        upstream_url=standins.llm_url,
        upstream_read_timeout_seconds=0.5,
    )


@pytest.mark.parametrize("stream", [True, False])
def test_an_upstream_that_refuses_connections_is_a_503(
    make_gateway: GatewayFactory, standins: Standins, stream: bool
) -> None:
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=f"http://127.0.0.1:{free_port()}"
    )
    before = metric("rsafe_proxy_upstream_errors_total", {"kind": "unavailable"})
    response = post(gateway, chat_body(stream=stream))
    assert response.status_code == 503
    assert error_of(response)["type"] == "backend_unavailable"
    assert "upstream" in error_of(response)["message"]
    assert metric("rsafe_proxy_upstream_errors_total", {"kind": "unavailable"}) == before + 1


def test_the_openai_sdk_sees_an_upstream_failure_as_an_api_status_error(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=f"http://127.0.0.1:{free_port()}"
    )
    with (
        openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0) as client,
        pytest.raises(openai.APIStatusError) as raised,
    ):
        client.chat.completions.create(model="standin", messages=USER, stream=True)
    assert raised.value.status_code == 503


@pytest.mark.parametrize("stream", [True, False])
def test_an_upstream_that_never_answers_is_a_504_and_its_connection_is_dropped(
    gateway: str, standins: Standins, stream: bool
) -> None:
    response = post(gateway, chat_body("hang", stream=stream))
    assert response.status_code == 504
    assert error_of(response)["type"] == "backend_timeout"
    record = standins.record_for(response.headers["x-request-id"])
    assert record is not None
    wait_for(lambda: record.closed_early, 5, "upstream connection closed")


@pytest.mark.parametrize("stream", [True, False])
def test_an_upstream_500_is_a_502(gateway: str, stream: bool) -> None:
    response = post(gateway, chat_body("status_500", stream=stream))
    assert response.status_code == 502
    assert error_of(response)["type"] == "backend_error"


def test_the_upstreams_own_refusal_keeps_its_status_and_message(gateway: str) -> None:
    response = post(gateway, chat_body("status_400"))
    assert response.status_code == 400
    error = error_of(response)
    assert error == {
        "type": "invalid_request",
        "message": "upstream LLM: model 'nope' does not exist",
        "param": "model",
    }


def test_an_upstream_that_answers_json_to_a_stream_request_is_a_502(gateway: str) -> None:
    response = post(gateway, chat_body("ignores_stream"))
    assert response.status_code == 502
    assert error_of(response)["message"] == (
        "upstream LLM did not stream (answered application/json)"
    )


def test_an_upstream_that_stalls_mid_stream_ends_the_stream_with_an_error(
    gateway: str, standins: Standins
) -> None:
    streamed = stream_chat(gateway, chat_body("stall"))
    assert streamed.status == 200
    assert streamed.payloads[-1] == "[DONE]"
    assert streamed.last == {
        "error": {
            "type": "backend_timeout",
            "message": "upstream LLM stopped sending within the read timeout",
            "param": None,
        }
    }
    assert SAFE_REPLY.startswith(streamed.text)
    record = standins.record_for(streamed.headers["x-request-id"])
    assert record is not None
    wait_for(lambda: record.closed_early, 5, "upstream connection closed")
    with (
        openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0) as client,
        pytest.raises(openai.APIError, match="read timeout"),
    ):
        list(client.chat.completions.create(
            model="standin", messages=USER, stream=True, extra_body={"script": "stall"}
        ))  # fmt: skip


def test_an_error_event_from_the_upstream_becomes_the_gateways_error(gateway: str) -> None:
    streamed = stream_chat(gateway, chat_body("error_chunk"))
    assert streamed.last["error"]["type"] == "backend_error"
    assert "engine died" in streamed.last["error"]["message"]
    assert streamed.payloads[-1] == "[DONE]"


def test_a_failing_guard_under_fail_closed_cuts_and_nothing_unjudged_is_released(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, connect_retries=0
    )
    standins.guard_status, standins.guard_fails_when = 500, "Agent:"  # output checks only
    before = metric("rsafe_proxy_cuts_total", {"stage": "output", "reason": "fail_closed"})
    streamed = stream_chat(gateway, chat_body("safe"))
    assert streamed.text == ""
    rsafe = streamed.last["rsafe"]
    assert streamed.last["choices"][0]["finish_reason"] == "content_filter"
    assert rsafe["reason"] == "fail_closed"
    assert rsafe["decision"]["verdict"] == "undetermined"
    assert rsafe["decision"]["failure"] == "5xx" and rsafe["decision"]["fail_mode"] == "closed"
    after = metric("rsafe_proxy_cuts_total", {"stage": "output", "reason": "fail_closed"})
    assert after == before + 1


def test_a_failing_guard_under_fail_open_releases_and_marks(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, fail_mode="open",
        connect_retries=0,
    )  # fmt: skip
    standins.guard_status = 500  # every check fails, the input check too
    before = metric("rsafe_proxy_fail_open_marks_total", {"stage": "output"})
    streamed = stream_chat(gateway, chat_body("safe"))
    assert streamed.text == SAFE_REPLY
    assert streamed.chunks[-2]["choices"][0]["finish_reason"] == "stop"
    mark = streamed.last  # after the upstream's own last chunk, before [DONE]
    assert mark["choices"] == []
    assert mark["rsafe"]["action"] == "marked"
    assert mark["rsafe"]["decision"]["verdict"] == "undetermined"
    assert mark["rsafe"]["decision"]["fail_mode"] == "open"
    assert metric("rsafe_proxy_fail_open_marks_total", {"stage": "output"}) == before + 1


def test_optimistic_release_may_show_the_unsafe_window_but_still_ends_with_content_filter(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    standins.token_delay, standins.guard_delay = 0.01, 0.3
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url,
        proxy_output_release="optimistic",
    )  # fmt: skip
    streamed = stream_chat(gateway, chat_body("unsafe"))
    assert streamed.last["choices"][0]["finish_reason"] == "content_filter"
    assert UNSAFE_REPLY.startswith(streamed.text)
    assert MARKER in streamed.text  # the documented leak: text released before its check
    assert all(c["choices"][0]["finish_reason"] != "stop" for c in streamed.chunks)
    safe = stream_chat(gateway, chat_body("safe"))
    assert safe.text == SAFE_REPLY and safe.chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_a_parallel_input_check_releases_nothing_of_an_unsafe_prompts_reply(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    # The upstream starts streaming before the input check answers.
    standins.guard_delay, standins.token_delay = 0.2, 0.01
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url,
        proxy_input_check="parallel",
    )  # fmt: skip
    unsafe_prompt = [{"role": "user", "content": f"Please {MARKER} my cat"}]
    streamed = stream_chat(gateway, chat_body("long", messages=unsafe_prompt))
    assert streamed.text == ""
    assert streamed.last["rsafe"]["decision"]["stage"] == "input"
    assert streamed.last["choices"][0]["finish_reason"] == "content_filter"
    record = standins.record_for(streamed.headers["x-request-id"])
    assert record is not None and record.sent  # it was called at once ...
    wait_for(lambda: record.closed_early, 5, "upstream connection closed")  # ... and stopped
    safe = stream_chat(gateway, chat_body("safe"))
    assert safe.text == SAFE_REPLY
    answer = post(gateway, chat_body("safe", stream=False, messages=unsafe_prompt)).json()
    assert answer["choices"][0]["finish_reason"] == "content_filter"


def test_without_an_upstream_the_route_does_not_exist(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    gateway = make_gateway(model_server_url=standins.guard_url)
    response = post(gateway, chat_body())
    assert response.status_code == 404
    assert error_of(response)["type"] == "invalid_request"
    assert "/v1/chat/completions" not in httpx.get(f"{gateway}/openapi.json").json()["paths"]


def test_with_an_upstream_the_route_is_documented(gateway: str) -> None:
    schema = httpx.get(f"{gateway}/openapi.json").json()
    operation = schema["paths"]["/v1/chat/completions"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ChatCompletionRequest"
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "422" not in operation["responses"]


def test_api_keys_rate_limits_and_body_limits_apply(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    key = "proxy-test-key"
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url, auth_enabled=True,
        api_key_hashes=hashlib.sha256(key.encode()).hexdigest(), rate_limit_per_second=0.01,
        rate_limit_burst=2, max_body_bytes=2048,
    )  # fmt: skip
    assert post(gateway, chat_body()).status_code == 401
    authorised = {"Authorization": f"Bearer {key}"}
    # Admission (key, then a token) comes before the body is read: the oversized body pays its
    # token and is refused unread, so it goes first while the bucket still has one for the next.
    big = chat_body(messages=[{"role": "user", "content": "x" * 4000}])
    assert post(gateway, big, headers=authorised).status_code == 413
    assert post(gateway, chat_body(stream=False), headers=authorised).status_code == 200
    limited = post(gateway, chat_body(), headers=authorised)
    assert limited.status_code == 429 and error_of(limited)["type"] == "rate_limited"
    # The caller's key stays in the gateway: the upstream never sees it.
    assert all("authorization" not in record.headers for record in standins.records)


def test_a_client_that_gives_up_before_the_answer_starts_closes_the_upstream_connection(
    make_gateway: GatewayFactory, standins: Standins
) -> None:
    gateway = make_gateway(
        model_server_url=standins.guard_url, upstream_url=standins.llm_url,
        upstream_read_timeout_seconds=60.0,
    )  # fmt: skip
    for calls, stream in enumerate((False, True), start=1):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{gateway}/v1/chat/completions", json=chat_body("hang", stream=stream),
                timeout=httpx.Timeout(30, read=0.5),
            )  # fmt: skip
        wait_for(lambda: len(standins.records) == calls, 5, "the upstream was called")  # noqa: B023
        record = standins.records[-1]
        # Long before the gateway's own 60 s read timeout.
        wait_for(lambda: record.closed_early, 5, "upstream connection closed")  # noqa: B023
