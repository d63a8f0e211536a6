"""The guarded stream against the scripted stand-in upstream and the stand-in guard (see
standins.py): an unsafe sentence never reaches the client, a safe reply arrives byte for byte,
a client that leaves closes the upstream connection. Raw SSE and the official `openai` SDK."""

from __future__ import annotations

import io

import httpx
import openai
import orjson
import pytest

from .conftest import GatewayFactory, metric
from .helpers import USER, chat_body, error_of, stream_chat
from .standins import (
    MARKER,
    SAFE_REPLY,
    SAFE_SENTENCES,
    UNSAFE_AT,
    UNSAFE_REPLY,
    UNSAFE_SENTENCE,
    Standins,
    wait_for,
)


@pytest.fixture
def gateway(make_gateway: GatewayFactory, standins: Standins) -> str:
    standins.token_delay = 0.01  # the cut must land while the upstream is still streaming
    return make_gateway(model_server_url=standins.guard_url, upstream_url=standins.llm_url)


def test_an_unsafe_sentence_never_reaches_the_client_and_the_stream_says_content_filter(
    gateway: str, standins: Standins
) -> None:
    cuts_before = metric("rsafe_proxy_cuts_total", {"stage": "output", "reason": "unsafe"})
    streamed = stream_chat(gateway, chat_body("unsafe"))
    assert streamed.status == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert MARKER not in streamed.text and UNSAFE_SENTENCE.strip() not in streamed.text
    # The safe prefix arrived (whole windows before the unsafe one), and nothing else.
    assert UNSAFE_REPLY.startswith(streamed.text)
    assert streamed.text.startswith(SAFE_SENTENCES[0])
    assert len(streamed.text) <= len("".join(SAFE_SENTENCES[:UNSAFE_AT]))
    assert streamed.payloads[-1] == "[DONE]"
    last = streamed.last
    assert last["choices"][0]["finish_reason"] == "content_filter"
    assert last["id"] == "chatcmpl-standin" and last["model"] == "standin"
    rsafe = last["rsafe"]
    assert rsafe["action"] == "cut" and rsafe["reason"] == "unsafe"
    assert rsafe["request_id"] == streamed.headers["x-request-id"]
    decision = rsafe["decision"]
    assert decision["stage"] == "output" and decision["verdict"] == "unsafe"
    assert decision["flagged"] is True and decision["categories"] == ["U1"]
    assert decision["policy"]["id"] == "rsafe-default"
    assert rsafe["output_checks"] >= 2
    # The upstream was told to stop: its connection closed before it sent its last word.
    record = standins.record_for(streamed.headers["x-request-id"])
    assert record is not None
    wait_for(lambda: record.closed_early, 5, "upstream connection closed")
    assert not record.finished
    assert metric("rsafe_proxy_cuts_total", {"stage": "output", "reason": "unsafe"}) == (
        cuts_before + 1
    )


def test_a_safe_reply_arrives_byte_for_byte_as_the_upstream_sent_it(
    gateway: str, standins: Standins
) -> None:
    streamed = stream_chat(gateway, chat_body("safe", stream_options={"include_usage": True}))
    assert streamed.status == 200
    record = standins.record_for(streamed.headers["x-request-id"])
    assert record is not None and record.finished
    assert streamed.payloads == [raw.decode() for raw in record.sent] + ["[DONE]"]
    assert streamed.text == SAFE_REPLY
    assert streamed.chunks[-1]["usage"] == {"prompt_tokens": 5}  # the usage chunk, too
    # Every window was judged: the guard saw the whole reply, over several checks.
    judged = [p for p in standins.guard_prompts if "Agent:" in p]
    assert len(judged) >= len(SAFE_REPLY) // 40
    assert all(sentence.strip() in "".join(judged) for sentence in SAFE_SENTENCES)


def test_the_openai_sdk_streams_through_the_gateway_unchanged(
    gateway: str, standins: Standins
) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    with client:
        safe = client.chat.completions.create(
            model="standin", messages=USER, stream=True, extra_body={"script": "safe"}
        )
        safe_chunks = list(safe)
        unsafe = client.chat.completions.create(
            model="standin", messages=USER, stream=True, extra_body={"script": "unsafe"}
        )
        unsafe_chunks = list(unsafe)
    assert "".join(c.choices[0].delta.content or "" for c in safe_chunks if c.choices) == (
        SAFE_REPLY
    )
    assert safe_chunks[-1].choices[0].finish_reason == "stop"
    received = "".join(c.choices[0].delta.content or "" for c in unsafe_chunks if c.choices)
    assert MARKER not in received and UNSAFE_REPLY.startswith(received) and received
    last = unsafe_chunks[-1]
    assert last.choices[0].finish_reason == "content_filter"
    assert last.model_extra is not None
    assert last.model_extra["rsafe"]["decision"]["verdict"] == "unsafe"


def test_the_openai_sdk_non_streamed_answer_is_the_upstreams_or_cut(gateway: str) -> None:
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    with client:
        safe = client.chat.completions.create(
            model="standin", messages=USER, extra_body={"script": "safe"}
        )
        unsafe = client.chat.completions.create(
            model="standin", messages=USER, extra_body={"script": "unsafe"}
        )
    assert safe.choices[0].message.content == SAFE_REPLY
    assert safe.choices[0].finish_reason == "stop"
    assert unsafe.choices[0].finish_reason == "content_filter"
    content = unsafe.choices[0].message.content or ""
    assert MARKER not in content and UNSAFE_REPLY.startswith(content) and content
    assert unsafe.model_extra is not None and unsafe.model_extra["rsafe"]["reason"] == "unsafe"


def test_a_non_streamed_safe_answer_is_passed_on_as_sent(gateway: str) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json=chat_body("safe", stream=False), timeout=30
    )
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == "chatcmpl-standin" and "rsafe" not in body
    assert body["usage"]["completion_tokens"] == len(SAFE_REPLY.split())


def test_an_unsafe_prompt_is_answered_without_calling_the_upstream(
    gateway: str, standins: Standins
) -> None:
    body = chat_body("safe", messages=[{"role": "user", "content": f"Please {MARKER} my cat"}])
    streamed = stream_chat(gateway, body)
    assert streamed.status == 200 and streamed.payloads[-1] == "[DONE]"
    assert len(streamed.chunks) == 1 and streamed.text == ""
    chunk = streamed.last
    assert chunk["choices"][0]["finish_reason"] == "content_filter"
    assert chunk["rsafe"]["decision"]["stage"] == "input"
    assert chunk["rsafe"]["decision"]["verdict"] == "unsafe"
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json={**body, "stream": False}, timeout=30
    )
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "content_filter"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": ""}
    assert answer["rsafe"]["decision"]["stage"] == "input"
    assert standins.records == []  # the upstream was never called


def test_a_client_that_leaves_mid_stream_closes_the_upstream_connection(
    gateway: str, standins: Standins
) -> None:
    gone_before = metric("rsafe_proxy_client_disconnects_total")
    with httpx.stream(
        "POST", f"{gateway}/v1/chat/completions", json=chat_body("long"), timeout=30
    ) as response:
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        received = [next(lines) for _ in range(6)]
    assert any(line.startswith("data: ") for line in received)
    record = standins.record_for(request_id)
    assert record is not None
    wait_for(lambda: record.closed_early, 5, "upstream connection closed")
    assert not record.finished
    wait_for(lambda: metric("rsafe_proxy_checks_in_flight") == 0, 5, "no check left waiting")
    wait_for(
        lambda: metric("rsafe_proxy_client_disconnects_total") == gone_before + 1,
        5,
        "disconnect counted",
    )


def test_policies_come_from_the_headers_or_the_body_extension(
    gateway: str, standins: Standins
) -> None:
    streamed = stream_chat(
        gateway,
        chat_body("unsafe"),
        headers={"X-RSafe-Policy-Id": "kids-education"},
    )
    assert streamed.last["rsafe"]["decision"]["policy"]["id"] == "kids-education"
    streamed = stream_chat(
        gateway,
        chat_body("unsafe"),
        headers={
            "X-RSafe-Policy-Id": "kids-education",
            "X-RSafe-Output-Policy-Id": "financial-services",
        },
    )
    assert streamed.last["rsafe"]["decision"]["policy"]["id"] == "financial-services"
    streamed = stream_chat(
        gateway, chat_body("unsafe", rsafe={"output_policy_id": "kids-education"})
    )
    assert streamed.last["rsafe"]["decision"]["policy"]["id"] == "kids-education"
    # The extension field stays in the gateway; every other field reaches the upstream as sent.
    sent = chat_body("safe", temperature=0.3, seed=7, rsafe={"policy_id": "kids-education"})
    streamed = stream_chat(gateway, sent)
    record = standins.record_for(streamed.headers["x-request-id"])
    assert record is not None
    assert record.body == {k: v for k, v in sent.items() if k != "rsafe"}


@pytest.mark.parametrize(
    ("body", "headers", "param"),
    [
        (chat_body(rsafe={"policy_id": "nope"}), {}, "rsafe.policy_id"),
        (chat_body(), {"X-RSafe-Policy-Id": "nope"}, "x-rsafe-policy-id"),
        (chat_body(n=2), {}, "n"),
        (chat_body(messages=[{"role": "system", "content": "hi"}]), {}, "messages"),
        (chat_body(messages=[{"role": "user", "content": " "}]), {}, "messages[0].content"),
        (chat_body(messages=[]), {}, "messages"),
        (chat_body(rsafe={"surprise": 1}), {}, "rsafe.surprise"),
        ({"messages": USER}, {}, "model"),
    ],
)
def test_bad_requests_get_a_400_in_the_one_error_shape(
    gateway: str, standins: Standins, body: dict[str, object], headers: dict[str, str], param: str
) -> None:
    response = httpx.post(f"{gateway}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert response.status_code == 400
    error = error_of(response)
    assert error["type"] == "invalid_request" and error["param"] == param
    assert standins.records == []


def test_malformed_json_gets_a_400(gateway: str) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request"


def test_the_access_log_says_what_was_cut_never_the_text(
    gateway: str, access_log: io.StringIO
) -> None:
    streamed = stream_chat(gateway, chat_body("unsafe"))
    request_id = streamed.headers["x-request-id"]

    def logged() -> dict[str, object] | None:
        for raw in access_log.getvalue().splitlines():
            if request_id in raw and '"route"' in raw:
                entry: dict[str, object] = orjson.loads(raw)
                return entry
        return None

    wait_for(lambda: logged() is not None, 5, "the access log line")
    line = logged()
    assert line is not None
    assert line["route"] == "/v1/chat/completions" and line["status"] == 200
    assert line["cut"] == "unsafe" and line["cut_stage"] == "output"
    assert line["input_verdict"] == "safe" and line["output_checks"] >= 2  # type: ignore[operator]
    assert line["withheld_bytes"] > 0  # type: ignore[operator]
    assert line["released_bytes"] == len(streamed.text.encode())
    assert MARKER not in str(line) and "bread" not in str(line).lower()
