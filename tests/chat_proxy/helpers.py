"""Reading the gateway's streams in tests: raw SSE payloads, and the text they carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from openai.types.chat import ChatCompletionMessageParam

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "How do I bake bread?"}]


def chat_body(script: str = "safe", *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    return {"model": "standin", "messages": USER, "stream": stream, "script": script, **extra}


@dataclass
class Streamed:
    status: int
    headers: httpx.Headers
    payloads: list[str]  # every `data:` payload, `[DONE]` included

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [orjson.loads(p) for p in self.payloads if p != "[DONE]"]

    @property
    def text(self) -> str:
        return "".join(
            choice["delta"].get("content") or ""
            for chunk in self.chunks
            for choice in chunk.get("choices", [])
        )

    @property
    def last(self) -> dict[str, Any]:
        return self.chunks[-1]


def stream_chat(
    gateway: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Streamed:
    with httpx.stream(
        "POST", f"{gateway}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        payloads = [
            line.removeprefix("data: ")
            for line in response.iter_lines()
            if line.startswith("data:")
        ]
        if response.status_code != 200:
            response.read()
        return Streamed(response.status_code, response.headers, payloads)


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error object, checked to be in the gateway's one error shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"type", "message", "param"}, body
    error: dict[str, Any] = body["error"]
    return error
