"""Fixtures of the decision-log tests: a real PostgreSQL, a scratch database per test, and a
stand-in model server whose verdict the test controls (the subject here is the log, not the model;
the end-to-end check against real vLLM is in test_decision_log.py, marked e2e)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from postgres import ensure_shared_postgres, scratch_database
from standins import Call, ModelStandin, Reply

UNSAFE_MARKER = "UNSAFE-PLEASE"
# With a token budget this large (an appeal's) the verdict flips, so that a test can see an
# appeal overturn a decision.
APPEAL_BUDGET = 4096


def _completion(verdict: str) -> bytes:
    tail = "\\nCategories: U1" if verdict == "unsafe" else ""
    content = f"<think>judged</think>\\\\boxed{{{verdict}}}{tail}"
    return (
        '{"choices": [{"message": {"content": "' + content + '"}, "finish_reason": "stop"}],'
        ' "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'
    ).encode()


def _verdict(_standin: ModelStandin, call: Call) -> Reply:
    """`unsafe` when the prompt holds UNSAFE_MARKER, else `safe` (flipped for an appeal)."""
    if call.method != "POST":
        return Reply(501, b"{}")  # only completions are served
    body = json.loads(call.body)
    unsafe = UNSAFE_MARKER in json.dumps(body["messages"])
    if body.get("max_tokens", 0) >= APPEAL_BUDGET:
        unsafe = not unsafe
    return Reply(body=_completion("unsafe" if unsafe else "safe"))


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return ensure_shared_postgres()


@pytest.fixture
def database(postgres_admin_url: str) -> Iterator[str]:
    with scratch_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def verdict_server() -> Iterator[str]:
    with ModelStandin(_verdict).serving() as standin:
        yield standin.url
