"""Fixtures of the decision-log tests: a real PostgreSQL, a scratch database per test, and a
stand-in model server whose verdict the test controls (the subject here is the log, not the model;
the end-to-end check against real vLLM is in test_decision_log.py, marked e2e)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from postgres import ensure_shared_postgres, scratch_database
from standins import _Server, _serving

UNSAFE_MARKER = "UNSAFE-PLEASE"


def _completion(verdict: str) -> bytes:
    tail = "\\nCategories: U1" if verdict == "unsafe" else ""
    content = f"<think>judged</think>\\\\boxed{{{verdict}}}{tail}"
    return (
        '{"choices": [{"message": {"content": "' + content + '"}, "finish_reason": "stop"}],'
        ' "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'
    ).encode()


class _VerdictHandler(BaseHTTPRequestHandler):
    """`unsafe` when the prompt holds UNSAFE_MARKER, else `safe`; with a large token budget (an
    appeal's) the verdict flips, so a test can see an appeal overturn a decision."""

    appeal_budget = 4096

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        unsafe = UNSAFE_MARKER in json.dumps(body["messages"])
        if body.get("max_tokens", 0) >= self.appeal_budget:
            unsafe = not unsafe
        answer = _completion("unsafe" if unsafe else "safe")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    return ensure_shared_postgres()


@pytest.fixture
def database(postgres_admin_url: str) -> Iterator[str]:
    with scratch_database(postgres_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def verdict_server() -> Iterator[str]:
    with _serving(_Server(("127.0.0.1", 0), _VerdictHandler)) as url:
        yield url
