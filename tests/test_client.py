"""The Python client (`rsafe_gateway.client`) against a REAL gateway process (vLLM + Redis)."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from conftest import GatewayProcess, free_port
from rsafe_gateway.client import (
    AsyncRSafeClient,
    RSafeAPIError,
    RSafeClient,
    RSafeConnectionError,
)
from rsafe_gateway.protocol import Message, ModerationResponse
from standins import recording_server

pytestmark = pytest.mark.e2e

INLINE_POLICY = "X1 - Spam: unsolicited advertising.\nX2 - Weather: any talk about the weather.\n"


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def assert_decision(answer: ModerationResponse) -> None:
    assert answer.verdict.value in {"safe", "unsafe"}
    assert answer.flagged is (answer.verdict.value == "unsafe")
    assert answer.model == "rsafe"
    assert answer.usage.prompt_tokens > 0


def test_sync_prompt_check_and_cache(gateway_process: GatewayProcess) -> None:
    text = unique("How do I bake bread?")
    with RSafeClient(gateway_process.url) as client:
        first = client.moderate(text, request_id="client-test-1")
        second = client.moderate(text)
    assert_decision(first)
    assert first.id == "client-test-1"
    assert first.policy.id == "rsafe-default"
    assert first.cached is False
    assert second.cached is True
    assert second.verdict == first.verdict


def test_sync_response_check_with_messages_and_dicts(gateway_process: GatewayProcess) -> None:
    conversation: list[Message | dict[str, str]] = [
        Message(role="user", content=unique("How do I bake bread?")),
        {"role": "assistant", "content": "Mix flour, water, salt and yeast; knead; bake."},
    ]
    with RSafeClient(gateway_process.url) as client:
        answer = client.moderate(conversation, target="response", reasoning=False, cache=False)
    assert_decision(answer)
    assert answer.reasoning is None
    assert answer.cached is False


def test_sync_inline_and_named_policy(gateway_process: GatewayProcess) -> None:
    with RSafeClient(gateway_process.url) as client:
        inline = client.moderate(unique("Buy cheap watches!"), policy=INLINE_POLICY)
        named = client.moderate(unique("Tell me a story."), policy_id="kids-education")
    assert inline.policy.sha256 == hashlib.sha256(INLINE_POLICY.encode()).hexdigest()
    assert set(inline.categories) <= {"X1", "X2"}
    assert named.policy.id == "kids-education"


def test_sync_policies(gateway_process: GatewayProcess) -> None:
    with RSafeClient(gateway_process.url) as client:
        listed = client.policies()
        detail = client.policy("kids-education")
    assert listed.default_policy_id == "rsafe-default"
    assert {"rsafe-default", "kids-education"} <= {p.id for p in listed.policies}
    assert detail.id == "kids-education" and detail.text.strip()
    assert detail.categories


def test_sync_errors_carry_status_type_and_param(gateway_process: GatewayProcess) -> None:
    with RSafeClient(gateway_process.url) as client:
        with pytest.raises(RSafeAPIError) as unknown:
            client.moderate("hello", policy_id="no-such-policy")
        with pytest.raises(RSafeAPIError) as empty:
            client.moderate([{"role": "user", "content": "  "}])
        with pytest.raises(RSafeAPIError) as missing:
            client.policy("no-such-policy")
    assert (unknown.value.status, unknown.value.type) == (400, "invalid_request")
    assert unknown.value.param == "policy_id"
    assert empty.value.param == "input[0].content"
    assert missing.value.status == 404
    assert missing.value.to_dict()["error"]["type"] == "invalid_request"


def test_unreachable_gateway_is_a_connection_error() -> None:
    client = RSafeClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(RSafeConnectionError):
        client.moderate("hello")


def test_api_key_is_sent_and_a_foreign_answer_is_an_error() -> None:
    # The stand-in answers a chat completion, not a moderation answer.
    with (
        recording_server() as (url, seen),
        RSafeClient(url, api_key="secret-key") as client,
        pytest.raises(RSafeAPIError) as error,
    ):
        client.moderate("hello")
    assert seen[0]["authorization"] == "Bearer secret-key"
    assert error.value.type == "invalid_response"


def test_sync_batch_keeps_order_and_item_errors(gateway_process: GatewayProcess) -> None:
    items = [
        {"input": unique("first")},
        {"input": unique("second"), "policy_id": "kids-education"},
        {"input": "   "},
    ]
    with RSafeClient(gateway_process.url) as client:
        results = client.moderate_batch(items, batch_size=2)  # two calls, one answer list
    assert len(results) == 3
    assert isinstance(results[0], ModerationResponse)
    assert isinstance(results[1], ModerationResponse)
    assert results[1].policy.id == "kids-education"
    error = results[2]
    assert isinstance(error, RSafeAPIError)
    # the item's index in the whole batch, although it went in the second call
    assert (error.status, error.type, error.param) == (400, "invalid_request", "items[2].input")


async def test_async_client(gateway_process: GatewayProcess) -> None:
    text = unique("What is the capital of France?")
    async with AsyncRSafeClient(gateway_process.url) as client:
        answer = await client.moderate(text, policy=INLINE_POLICY)
        response_check = await client.moderate(
            [{"role": "user", "content": text}, {"role": "assistant", "content": "Paris."}]
        )
        listed = await client.policies()
        detail = await client.policy("rsafe-default")
        batch = await client.moderate_batch([{"input": text, "policy": INLINE_POLICY}])
        with pytest.raises(RSafeAPIError) as error:
            await client.moderate("hello", policy=INLINE_POLICY, policy_id="rsafe-default")
    assert_decision(answer)
    assert_decision(response_check)
    assert listed.default_policy_id == detail.id == "rsafe-default"
    assert isinstance(batch[0], ModerationResponse) and batch[0].cached is True
    assert (error.value.status, error.value.param) == (400, "policy")


async def test_async_unreachable_gateway() -> None:
    async with AsyncRSafeClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(RSafeConnectionError):
            await client.policies()
