"""The guarded chat completion: input check, upstream call, output windows, release or cut.

Streamed (held release, the default):

    client ◀─ released chunks ─ relay ◀─ SSE chunks ─ upstream LLM
                                  │ cut into windows (windows.py)
                                  └─▶ response checks (≤ 4 in flight), judged in order

Each upstream chunk is forwarded byte for byte, once all of its text lies in windows judged
safe; a chunk that straddles a window's end waits for the next window. On a cut the upstream
connection is closed, the pending checks are cancelled and the client gets one last chunk with
`finish_reason: "content_filter"` and the decision. Optimistic release forwards text at once and
holds only the upstream's closing chunk (the one with its finish_reason) until every check is
done, so a late cut still ends the stream with `content_filter`.
Non-streamed: the same checks on the whole answer; a cut answer keeps the text before the unsafe
window. Nothing here knows HTTP requests (route.py does).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from ..decision_log.record import DecisionContext
from ..errors import DecisionLogUnavailable, GatewayError
from ..metrics import (
    PROXY_ADDED_TTFT,
    PROXY_CLIENT_GONE,
    PROXY_CUTS,
    PROXY_HELD_BACK_BYTES,
    PROXY_MARKS,
    PROXY_OUTPUT_CHECKS,
    PROXY_UPSTREAM_ERRORS,
    PROXY_WITHHELD_BYTES,
)
from ..responses import error_body
from ..service import ModerationService
from ..settings import InputCheck, OutputRelease, Settings
from .checks import Action, CheckOutcome, ReplyChecks
from .protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChunkChoice,
    CompletionChoice,
    GuardDecision,
    RSafeExtension,
)
from .upstream import (
    UpstreamClient,
    UpstreamConfig,
    UpstreamError,
    UpstreamRejected,
    UpstreamStream,
)
from .windows import Window, WindowCutter

# Window checks of one reply running at once: enough to keep up with a fast upstream when the
# guard is slower than generation, few enough that one reply cannot take the guard's whole queue.
MAX_CHECKS_IN_FLIGHT = 4

_DONE = b"data: [DONE]\n\n"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    window_chars: int
    lookback_chars: int
    input_check: InputCheck
    output_release: OutputRelease
    log_content: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> ProxyConfig:
        # A window, its look-back and some of the user turn must fit one response check.
        if settings.proxy_window_chars + settings.proxy_lookback_chars >= settings.max_text_chars:
            raise ValueError(
                "RSAFE_PROXY_WINDOW_CHARS + RSAFE_PROXY_LOOKBACK_CHARS must be below "
                "RSAFE_MAX_TEXT_CHARS"
            )
        return cls(
            window_chars=settings.proxy_window_chars,
            lookback_chars=settings.proxy_lookback_chars,
            input_check=settings.proxy_input_check,
            output_release=settings.proxy_output_release,
            log_content=settings.log_content,
        )


@dataclass(slots=True)
class ProxyCall:
    """One validated request (see route.py)."""

    body: dict[str, Any]  # what the upstream gets: the request without `rsafe`
    stream: bool
    model: str
    user_text: str
    input_policy_id: str
    output_policy_id: str
    request_id: str
    started: float  # time.perf_counter() at arrival
    log: dict[str, Any]  # this request's access-log fields
    context: DecisionContext  # the caller (tenant, key) and route, for the decision log


@dataclass(slots=True)
class _Tally:
    """What one reply went through; becomes metrics and access-log fields at its end."""

    input_verdict: str | None = None
    output_checks: int = 0
    cut: CheckOutcome | None = None
    marks: list[GuardDecision] = field(default_factory=list)  # no verdict, released (fail-open)
    received_bytes: int = 0
    released_bytes: int = 0
    peak_held_bytes: int = 0
    upstream_started: float | None = None
    first_received: float | None = None
    first_released: float | None = None
    upstream_error: str | None = None
    decision_log_failed: bool = False  # required mode: a check could not be put on record
    client_gone: bool = False
    cut_text: str | None = None


def _sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def _upstream_error_kind(exc: GatewayError) -> str:
    if isinstance(exc, UpstreamRejected):
        return "rejected"
    return str(getattr(exc, "kind", "5xx"))


class ChatProxy:
    def __init__(self, config: ProxyConfig, upstream: UpstreamClient, checks: ReplyChecks):
        self._config = config
        self._upstream = upstream
        self._checks = checks

    @classmethod
    def open(cls, settings: Settings, service: ModerationService) -> ChatProxy:
        """The proxy for `settings` (an upstream must be configured). Inside a running loop."""
        assert settings.upstream_url is not None
        config = ProxyConfig.from_settings(settings)
        for policy_id in (settings.proxy_input_policy_id, settings.proxy_output_policy_id):
            if policy_id is not None and service.policies.get(policy_id) is None:
                raise ValueError(f"RSAFE_PROXY_*_POLICY_ID names an unknown policy: {policy_id}")
        upstream = UpstreamClient(
            UpstreamConfig(
                base_url=settings.upstream_url,
                api_key=settings.upstream_api_key,
                connect_timeout=settings.upstream_connect_timeout_seconds,
                read_timeout=settings.upstream_read_timeout_seconds,
                max_connections=settings.max_connections,
            )
        )
        checks = ReplyChecks(service, settings.fail_mode, settings.max_text_chars)
        return cls(config, upstream, checks)

    async def close(self) -> None:
        await self._upstream.close()

    async def handle(self, call: ProxyCall) -> Response:
        tally = _Tally()
        try:
            if call.stream:
                return await self._stream(call, tally)
            return await self._complete(call, tally)
        except GatewayError as exc:
            if isinstance(exc, DecisionLogUnavailable):
                tally.decision_log_failed = True
            elif tally.upstream_started is not None:
                tally.upstream_error = _upstream_error_kind(exc)
            self._account(call, tally)
            raise
        except asyncio.CancelledError:  # the client went away while we prepared the answer
            tally.client_gone = True
            self._account(call, tally)
            raise

    # --- input check, then (or alongside) the upstream call -------------------------------

    def _input_check(self, call: ProxyCall) -> Awaitable[CheckOutcome]:
        check_id = f"{call.request_id}-in"
        return self._checks.input(call.user_text, call.input_policy_id, check_id, call.context)

    def _note_input(self, outcome: CheckOutcome, tally: _Tally) -> None:
        tally.input_verdict = outcome.decision.verdict
        if outcome.action is Action.MARK:
            tally.marks.append(outcome.decision)
        elif outcome.action is Action.CUT:
            tally.cut = outcome

    async def _stream(self, call: ProxyCall, tally: _Tally) -> Response:
        input_task: asyncio.Task[CheckOutcome] | None = None
        if self._config.input_check is InputCheck.SEQUENTIAL:
            outcome = await self._input_check(call)
            self._note_input(outcome, tally)
            if outcome.action is Action.CUT:
                self._account(call, tally)
                return self._blocked(call, outcome)
        else:
            input_task = asyncio.ensure_future(self._input_check(call))
        tally.upstream_started = time.perf_counter()
        try:
            stream = await self._upstream.open_stream(call.body, call.request_id)
        except BaseException:
            if input_task is not None:
                input_task.cancel()
            raise
        relay = _Relay(self, call, stream, input_task, tally)
        return StreamingResponse(relay.run(), media_type="text/event-stream", headers=_SSE_HEADERS)

    async def _complete(self, call: ProxyCall, tally: _Tally) -> Response:
        if self._config.input_check is InputCheck.SEQUENTIAL:
            outcome = await self._input_check(call)
            self._note_input(outcome, tally)
            if outcome.action is Action.CUT:
                self._account(call, tally)
                return self._blocked(call, outcome)
            tally.upstream_started = time.perf_counter()
            raw, document = await self._upstream.complete(call.body, call.request_id)
        else:
            tally.upstream_started = time.perf_counter()
            input_task = asyncio.ensure_future(self._input_check(call))
            answer = asyncio.ensure_future(self._upstream.complete(call.body, call.request_id))
            try:
                outcome = await input_task
                self._note_input(outcome, tally)
                if outcome.action is Action.CUT:
                    self._account(call, tally)
                    return self._blocked(call, outcome)
                raw, document = await answer
            finally:
                input_task.cancel()
                answer.cancel()
        return await self._judge_answer(call, tally, raw, document)

    async def _judge_answer(
        self, call: ProxyCall, tally: _Tally, raw: bytes, document: dict[str, Any]
    ) -> Response:
        message = _first_message(document)
        content = message.get("content") if message is not None else None
        text = content if isinstance(content, str) else ""
        tally.received_bytes = len(text.encode())
        cutter = self._cutter()
        windows = [*cutter.feed(text), *cutter.finish()]
        limit = asyncio.Semaphore(MAX_CHECKS_IN_FLIGHT)

        async def judge(window: Window) -> CheckOutcome:
            async with limit:
                return await self._window_check(call, window)

        tasks = [asyncio.ensure_future(judge(window)) for window in windows]
        try:
            for window, task in zip(windows, tasks, strict=True):
                outcome = await task
                tally.output_checks += 1
                if outcome.action is Action.MARK:
                    tally.marks.append(outcome.decision)
                elif outcome.action is Action.CUT:
                    tally.cut = outcome
                    kept = text[: window.start]
                    tally.released_bytes = len(kept.encode())
                    if self._config.log_content:
                        tally.cut_text = window.text
                    assert message is not None  # there was text to cut
                    message["content"] = kept
                    document["choices"][0]["finish_reason"] = "content_filter"
                    document["rsafe"] = self._extension(call, outcome, tally).model_dump()
                    self._account(call, tally)
                    return Response(orjson.dumps(document), media_type="application/json")
        finally:
            for task in tasks:
                task.cancel()
        tally.released_bytes = tally.received_bytes
        self._account(call, tally)
        if tally.marks:
            marked = CheckOutcome(Action.MARK, tally.marks[0])
            document["rsafe"] = self._extension(call, marked, tally).model_dump()
            return Response(orjson.dumps(document), media_type="application/json")
        return Response(raw, media_type="application/json")  # the upstream's answer, as sent

    # --- shared pieces --------------------------------------------------------------------

    def _cutter(self) -> WindowCutter:
        return WindowCutter(self._config.window_chars, self._config.lookback_chars)

    def _window_check(self, call: ProxyCall, window: Window) -> Awaitable[CheckOutcome]:
        check_id = f"{call.request_id}-w{window.index}"
        return self._checks.output(
            call.user_text, window.text, call.output_policy_id, check_id, call.context
        )

    @staticmethod
    def _extension(call: ProxyCall, outcome: CheckOutcome, tally: _Tally) -> RSafeExtension:
        return RSafeExtension(
            request_id=call.request_id,
            action="cut" if outcome.action is Action.CUT else "marked",
            reason=outcome.reason,
            decision=outcome.decision,
            output_checks=tally.output_checks,
        )

    def _blocked(self, call: ProxyCall, outcome: CheckOutcome) -> Response:
        """The answer to a prompt that the input check stopped: no upstream token in it."""
        extension = self._extension(call, outcome, _Tally())
        created = int(time.time())
        completion_id = f"chatcmpl-{call.request_id}"
        if call.stream:
            chunk = ChatCompletionChunk(
                id=completion_id,
                created=created,
                model=call.model,
                choices=[
                    ChunkChoice(
                        delta={"role": "assistant", "content": ""}, finish_reason="content_filter"
                    )
                ],
                rsafe=extension,
            )
            body = _sse(chunk.model_dump_json().encode()) + _DONE
            return Response(body, media_type="text/event-stream", headers=_SSE_HEADERS)
        answer = ChatCompletion(
            id=completion_id,
            created=created,
            model=call.model,
            choices=[
                CompletionChoice(
                    message=AssistantMessage(content=""), finish_reason="content_filter"
                )
            ],
            rsafe=extension,
        )
        return Response(answer.model_dump_json(), media_type="application/json")

    def _account(self, call: ProxyCall, tally: _Tally) -> None:
        """Metrics and the access-log fields of one finished (or abandoned) request."""
        if tally.upstream_started is not None:
            PROXY_OUTPUT_CHECKS.observe(tally.output_checks)
            PROXY_HELD_BACK_BYTES.observe(tally.peak_held_bytes)
        withheld = max(0, tally.received_bytes - tally.released_bytes)
        if tally.cut is not None:
            PROXY_CUTS.labels(tally.cut.decision.stage, tally.cut.reason or "unsafe").inc()
            PROXY_WITHHELD_BYTES.inc(withheld)
        for stage in sorted({decision.stage for decision in tally.marks}):
            PROXY_MARKS.labels(stage).inc()
        if tally.upstream_error is not None:
            PROXY_UPSTREAM_ERRORS.labels(tally.upstream_error).inc()
        if tally.client_gone:
            PROXY_CLIENT_GONE.inc()
        if (
            tally.first_released is not None
            and tally.first_received is not None
            and tally.upstream_started is not None
        ):
            waited = tally.first_released - call.started
            upstream_own = tally.first_received - tally.upstream_started
            PROXY_ADDED_TTFT.observe(max(0.0, waited - upstream_own))
        fields: dict[str, Any] = {
            "stream": call.stream,
            "policy_id": call.input_policy_id,
            "output_policy_id": call.output_policy_id,
            "input_verdict": tally.input_verdict,
            "output_checks": tally.output_checks,
            "cut": tally.cut.reason if tally.cut else None,
            "cut_stage": tally.cut.decision.stage if tally.cut else None,
            "fail_open_marks": len(tally.marks),
            "released_bytes": tally.released_bytes,
            "withheld_bytes": withheld,
            "upstream_error": tally.upstream_error,
            "decision_log_failed": tally.decision_log_failed,
            "client_gone": tally.client_gone,
        }
        if self._config.log_content:
            fields["input"] = call.user_text
            fields["cut_text"] = tally.cut_text
        call.log.update(fields)


def _first_message(document: dict[str, Any]) -> dict[str, Any] | None:
    choices = document.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict):
            return message
    return None


# --- the streamed relay -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    raw: bytes
    text: str
    finishes: bool  # carries a finish_reason
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Chunk:
    raw: bytes
    nbytes: int  # UTF-8 bytes of its text
    end: int  # reply offset (characters) after its text
    final: bool  # the upstream's closing chunk, or one after it (usage)


@dataclass(frozen=True, slots=True)
class _Failed:
    error: GatewayError


class _End:
    """The upstream's stream is over."""


class _Wake:
    """A check finished."""


_Event = _Parsed | _Failed | _End | _Wake
_END = _End()
_WAKE = _Wake()


@dataclass(slots=True)
class _PendingCheck:
    window: Window
    task: asyncio.Task[CheckOutcome] | None = None


class _Relay:
    """One streamed reply. All state is touched from `run()`'s loop only: the reader and the
    checks talk to it through one queue of events, in the order they happen."""

    def __init__(
        self,
        proxy: ChatProxy,
        call: ProxyCall,
        stream: UpstreamStream,
        input_task: asyncio.Task[CheckOutcome] | None,
        tally: _Tally,
    ) -> None:
        self._proxy = proxy
        self._call = call
        self._stream = stream
        self._input_task = input_task
        self._tally = tally
        self._events: asyncio.Queue[_Event] = asyncio.Queue()
        self._cutter = proxy._cutter()
        self._optimistic = proxy._config.output_release is OutputRelease.OPTIMISTIC
        self._pending: deque[_Chunk] = deque()
        self._held_bytes = 0
        self._checks: deque[_PendingCheck] = deque()
        self._judged_to = 0  # reply offset up to which every window was judged safe
        self._input_ok = input_task is None
        self._upstream_done = False
        self._after_finish = False
        self._meta: dict[str, Any] | None = None  # id, created, model of the upstream's chunks
        self._released_any = False

    def _wake(self, _: object) -> None:
        self._events.put_nowait(_WAKE)

    async def run(self) -> AsyncIterator[bytes]:
        reader = asyncio.create_task(self._read())
        if self._input_task is not None:
            self._input_task.add_done_callback(self._wake)
        try:
            while True:
                output, finished = self._on(await self._events.get())
                if output:
                    yield output
                if finished:
                    return
        except (asyncio.CancelledError, GeneratorExit):
            self._tally.client_gone = True
            raise
        finally:
            # Synchronous cleanup only: this also runs in a cancelled task (client gone).
            reader.cancel()
            self._stream.close()
            if self._input_task is not None:
                self._input_task.cancel()
            for pending in self._checks:
                if pending.task is not None:
                    pending.task.cancel()
            self._proxy._account(self._call, self._tally)

    async def _read(self) -> None:
        try:
            async for payload in self._stream.events():
                event = self._parse(payload)
                self._events.put_nowait(event)
                if isinstance(event, _Failed):
                    return
        except GatewayError as exc:
            self._events.put_nowait(_Failed(exc))
            return
        self._events.put_nowait(_END)

    @staticmethod
    def _parse(payload: bytes) -> _Parsed | _Failed:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return _Failed(UpstreamError("upstream LLM sent a stream chunk that is not JSON"))
        if not isinstance(document, dict):
            return _Failed(UpstreamError("upstream LLM sent a stream chunk that is not an object"))
        if "error" in document:
            error = document["error"]
            detail = error.get("message") if isinstance(error, dict) else error
            return _Failed(UpstreamError(f"upstream LLM failed mid-stream: {str(detail)[:500]}"))
        text = ""
        finishes = False
        for choice in document.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                text += delta["content"]
            finishes = finishes or choice.get("finish_reason") is not None
        return _Parsed(payload, text, finishes, document)

    def _on(self, event: _Event) -> tuple[bytes, bool]:
        if isinstance(event, _Parsed):
            return self._on_chunk(event), False
        if isinstance(event, _End):
            self._upstream_done = True
            self._queue_windows(self._cutter.finish())
            return self._release()
        if isinstance(event, _Failed):
            self._tally.upstream_error = _upstream_error_kind(event.error)
            error = error_body(event.error)
            return _sse(orjson.dumps(error)) + _DONE, True
        return self._on_checks_done()

    def _on_chunk(self, parsed: _Parsed) -> bytes:
        if self._meta is None:
            self._meta = parsed.document
        now = time.perf_counter()
        if parsed.text and self._tally.first_received is None:
            self._tally.first_received = now
        windows = self._cutter.feed(parsed.text)
        nbytes = len(parsed.text.encode()) if parsed.text else 0
        final = parsed.finishes or self._after_finish
        self._after_finish = final
        self._pending.append(_Chunk(parsed.raw, nbytes, self._cutter.received, final))
        self._held_bytes += nbytes
        self._tally.received_bytes += nbytes
        self._tally.peak_held_bytes = max(self._tally.peak_held_bytes, self._held_bytes)
        self._queue_windows(windows)
        output, _ = self._release()
        return output

    def _queue_windows(self, windows: list[Window]) -> None:
        self._checks.extend(_PendingCheck(window) for window in windows)
        self._start_checks()

    def _start_checks(self) -> None:
        running = 0
        for pending in self._checks:
            if pending.task is None:
                if running >= MAX_CHECKS_IN_FLIGHT:
                    return
                pending.task = asyncio.ensure_future(
                    self._proxy._window_check(self._call, pending.window)
                )
                pending.task.add_done_callback(self._wake)
                self._tally.output_checks += 1
                running += 1
            elif not pending.task.done():
                running += 1

    def _on_checks_done(self) -> tuple[bytes, bool]:
        try:
            return self._judged()
        except DecisionLogUnavailable as exc:
            # Required mode, a check not on record: what it judged is withheld, the stream ends.
            self._tally.decision_log_failed = True
            return _sse(orjson.dumps(error_body(exc))) + _DONE, True

    def _judged(self) -> tuple[bytes, bool]:
        """Act on the checks that finished, in order (a check's result may raise)."""
        if not self._input_ok and self._input_task is not None and self._input_task.done():
            outcome = self._input_task.result()
            self._proxy._note_input(outcome, self._tally)
            if outcome.action is Action.CUT:
                return self._cut(outcome), True
            self._input_ok = True
        while self._checks and self._checks[0].task is not None and self._checks[0].task.done():
            pending = self._checks.popleft()
            assert pending.task is not None
            outcome = pending.task.result()
            if outcome.action is Action.CUT:
                if self._proxy._config.log_content:
                    self._tally.cut_text = pending.window.text
                return self._cut(outcome), True
            if outcome.action is Action.MARK:
                self._tally.marks.append(outcome.decision)
            self._judged_to = pending.window.end
        self._start_checks()
        return self._release()

    def _release(self) -> tuple[bytes, bool]:
        """Everything that may reach the client now, and whether the reply is complete."""
        if not self._input_ok:
            return b"", False
        out: list[bytes] = []
        while self._pending:
            chunk = self._pending[0]
            released = (self._optimistic and not chunk.final) or chunk.end <= self._judged_to
            if not released:
                break
            self._pending.popleft()
            out.append(_sse(chunk.raw))
            self._held_bytes -= chunk.nbytes
            self._tally.released_bytes += chunk.nbytes
            if chunk.nbytes and not self._released_any:
                self._released_any = True
                self._tally.first_released = time.perf_counter()
        finished = self._upstream_done and not self._pending and not self._checks
        if finished:
            if self._tally.marks:
                out.append(self._marked_chunk())
            out.append(_DONE)
        return b"".join(out), finished

    def _chunk(self, choices: list[ChunkChoice], extension: RSafeExtension) -> bytes:
        meta = self._meta or {}
        chunk = ChatCompletionChunk(
            id=str(meta.get("id") or f"chatcmpl-{self._call.request_id}"),
            created=int(meta.get("created") or time.time()),
            model=str(meta.get("model") or self._call.model),
            choices=choices,
            rsafe=extension,
        )
        return _sse(chunk.model_dump_json().encode())

    def _cut(self, outcome: CheckOutcome) -> bytes:
        self._tally.cut = outcome
        delta = {} if self._released_any else {"role": "assistant", "content": ""}
        choice = ChunkChoice(delta=delta, finish_reason="content_filter")
        extension = self._proxy._extension(self._call, outcome, self._tally)
        return self._chunk([choice], extension) + _DONE

    def _marked_chunk(self) -> bytes:
        # No choices: like the usage chunk, it carries no text, only the mark.
        outcome = CheckOutcome(Action.MARK, self._tally.marks[0])
        return self._chunk([], self._proxy._extension(self._call, outcome, self._tally))
