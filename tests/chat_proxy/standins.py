"""Scripted stand-ins for the chat proxy's tests and its benchmark (FAULT INJECTION and scripted
content only; the happy path also runs against the real vLLM in test_real_vllm.py).

- the upstream LLM, `/llm/v1/chat/completions` on an aiohttp server (its own thread and event
  loop): an OpenAI-compatible server that streams a known reply word by word (optionally paced),
  with the unsafe sentence at a known place, or a fault; it records what it was sent, every payload
  it streamed, and whether the client closed the connection early. This is the LLM the proxy
  guards, not a model server of the gateway, so it is not the shared model stand-in;
- the guard model, the one model stand-in of the tests (`tests/standins.py`'s `ModelStandin`),
  answering `\\boxed{unsafe}` exactly when the text it is asked to judge contains MARKER, else
  `\\boxed{safe}`.
The request body's `script` field (passed through by the proxy like any unknown field) picks the
upstream's behaviour.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from standins import Call, ModelStandin, Reply

MARKER = "ZORBLAX"
SAFE_SENTENCES = (
    "Bread needs flour, water, salt and yeast.",
    " Mix them into a soft dough.",
    " Knead it for ten minutes.",
    " Let it rise for an hour.",
    " Bake it at two hundred degrees.",
    " Let it cool before slicing.",
)
UNSAFE_SENTENCE = f" Then {MARKER} the oven until it explodes."
SAFE_REPLY = "".join(SAFE_SENTENCES)
UNSAFE_AT = 3  # the unsafe sentence comes after this many safe ones
# A long tail after the unsafe sentence: a cut lands while the upstream is still streaming.
UNSAFE_REPLY = (
    "".join(SAFE_SENTENCES[:UNSAFE_AT]) + UNSAFE_SENTENCE + "".join(SAFE_SENTENCES[UNSAFE_AT:]) * 4
)
LONG_REPLY = SAFE_REPLY * 40  # for disconnects and the benchmark


def words(text: str) -> list[str]:
    """The reply as the upstream streams it: one word (with its leading space) per chunk."""
    return re.findall(r"\s*\S+", text)


@dataclass
class UpstreamRecord:
    body: dict[str, Any]
    headers: dict[str, str]
    sent: list[bytes] = field(default_factory=list)  # every `data:` payload, in order
    finished: bool = False  # `[DONE]` was written
    closed_early: bool = False  # the client closed the connection before `[DONE]`


class Standins:
    def __init__(
        self, token_delay: float = 0.0, first_token_delay: float = 0.0, guard_delay: float = 0.0
    ) -> None:
        self.token_delay = token_delay
        self.first_token_delay = first_token_delay
        self.guard_delay = guard_delay
        self.guard_status = 200  # set to 500 to make the guard fail ...
        self.guard_fails_when = ""  # ... on prompts containing this ("Agent:": output checks only)
        self.bench_reply = LONG_REPLY  # what the `bench` script streams (the benchmark's reply)
        self.records: list[UpstreamRecord] = []
        self.guard_prompts: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._guard = ModelStandin(self._judge, keep_alive=True)
        self.url = ""

    @property
    def llm_url(self) -> str:
        return f"{self.url}/llm"

    @property
    def guard_url(self) -> str:
        return self._guard.url

    def record_for(self, request_id: str) -> UpstreamRecord | None:
        for record in self.records:
            if record.headers.get("x-request-id") == request_id:
                return record
        return None

    # --- the upstream LLM ----------------------------------------------------------------

    async def _llm(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = UpstreamRecord(body, {k.lower(): v for k, v in request.headers.items()})
        self.records.append(record)
        script = body.get("script", "safe")
        if script == "status_500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if script == "status_400":
            return web.json_response(
                {"error": {"message": "model 'nope' does not exist", "param": "model"}},
                status=400,
            )
        if script == "hang":  # accepts, never answers
            await self._until_closed(request, record)
            return web.Response(status=204)
        reply = {"unsafe": UNSAFE_REPLY, "long": LONG_REPLY, "bench": self.bench_reply}.get(
            script, SAFE_REPLY
        )
        if not body.get("stream") or script == "ignores_stream":
            document = {
                "id": "chatcmpl-standin", "object": "chat.completion", "created": 1,
                "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": len(words(reply))},
            }  # fmt: skip
            return web.Response(body=orjson.dumps(document), content_type="application/json")
        return await self._stream(request, record, body, script, reply)

    async def _stream(
        self,
        request: web.Request,
        record: UpstreamRecord,
        body: dict[str, Any],
        script: str,
        reply: str,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 1,
                "model": body.get("model")}  # fmt: skip
        payloads = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}]}]  # fmt: skip
        payloads += [
            {**base, "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
            for word in words(reply)
        ]
        payloads.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            payloads.append({**base, "choices": [], "usage": {"prompt_tokens": 5}})
        try:
            if self.first_token_delay:
                await asyncio.sleep(self.first_token_delay)
            for index, payload in enumerate(payloads):
                if script == "stall" and index == 4:
                    await self._until_closed(request, record)
                    return response
                if script == "error_chunk" and index == 4:
                    payload = {"error": {"message": "engine died", "type": "internal"}}
                raw = orjson.dumps(payload)
                await response.write(b"data: " + raw + b"\n\n")
                record.sent.append(raw)
                if self.token_delay and index:
                    await asyncio.sleep(self.token_delay)
                if request.transport is None or request.transport.is_closing():
                    record.closed_early = True
                    return response
            await response.write(b"data: [DONE]\n\n")
            record.finished = True
        except (ConnectionResetError, OSError):
            record.closed_early = True
        return response

    @staticmethod
    async def _until_closed(request: web.Request, record: UpstreamRecord) -> None:
        # aiohttp offers a handler no event for the peer's close (handler cancellation is off).
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        record.closed_early = True

    # --- the guard ------------------------------------------------------------------------

    def _judge(self, _standin: ModelStandin, call: Call) -> Reply:
        if call.method != "POST":
            return Reply(405, b"{}")  # it serves chat completions only
        body = json.loads(call.body)
        prompt = "\n".join(str(message.get("content", "")) for message in body["messages"])
        self.guard_prompts.append(prompt)
        if self.guard_status != 200 and self.guard_fails_when in prompt:
            return Reply(self.guard_status, b'{"error": "guard down"}', self.guard_delay)
        answer = (
            "<think>It names the marker.</think>\\boxed{unsafe}\nCategories: U1"
            if MARKER in prompt
            else "<think>Nothing unsafe.</think>\\boxed{safe}"
        )
        document = {
            "choices": [{"message": {"content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        }
        return Reply(body=orjson.dumps(document), delay=self.guard_delay)

    # --- serving --------------------------------------------------------------------------

    async def _start(self, ready: threading.Event) -> None:
        app = web.Application()
        app.router.add_post("/llm/v1/chat/completions", self._llm)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        ready.set()

    @contextmanager
    def running(self) -> Iterator[Standins]:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._start(ready))
            loop.run_forever()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        if not ready.wait(10):
            raise TimeoutError("stand-in servers did not start")
        try:
            with self._guard.serving():
                yield self
        finally:
            assert self._runner is not None
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


def wait_for(check: Any, timeout: float, what: str) -> None:
    """Poll `check()` until true (the stand-in's view of a connection changes asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout}s")
