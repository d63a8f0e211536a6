"""The model-server client: one pooled aiohttp session toward vLLM's OpenAI-compatible API.

aiohttp rather than httpx on this path: at 64 concurrent requests httpx's own pool fell far below
the direct throughput while aiohttp kept up (README, "Benchmark"). Swapping the client means
rewriting this module only; the rest of the gateway sees `ModelBackend` and the errors below.

Every aiohttp/asyncio exception is translated here, and only here, into `errors.Backend*`.
Retries happen on connection failures only: refused connections, and connections reset or closed
under a request (a completion has no side effect). Never on timeouts or HTTP errors.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from .errors import BackendError, BackendTimeout, BackendUnavailable, InvalidRequest
from .http_session import pooled_session


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    # What vLLM's reasoning parser split off (gpt-oss-safeguard's analysis channel), if any.
    reasoning: str | None = None


@dataclass(frozen=True, slots=True)
class BackendConfig:
    base_url: str
    model: str
    api_key: str | None = None
    connect_timeout: float = 2.0
    read_timeout: float = 60.0
    connect_retries: int = 2
    max_connections: int = 512


_FIRST_BACKOFF_SECONDS = 0.05


class _ConnectFailed(Exception):
    """Internal: the TCP connection could not be made (safe to retry)."""


class ModelBackend:
    """Sends chat completions to the model server. Create inside a running event loop."""

    def __init__(self, config: BackendConfig) -> None:
        self._config = config
        self._completions_url = f"{config.base_url}/v1/chat/completions"
        self._models_url = f"{config.base_url}/v1/models"
        self._session = pooled_session(
            api_key=config.api_key,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=config.max_connections,
        )
        # The retries after a failed first attempt: waits of 0.05 s (above), then 0.1, 0.2, 0.4
        # and 0.5 s at most between them.
        self._retrying = AsyncRetrying(
            retry=retry_if_exception_type(_ConnectFailed),
            stop=stop_after_attempt(max(config.connect_retries, 1)),
            wait=wait_exponential(multiplier=2 * _FIRST_BACKOFF_SECONDS, max=0.5),
            reraise=True,
        )

    @property
    def model(self) -> str:
        return self._config.model

    async def close(self) -> None:
        await self._session.close()

    async def complete(self, body: dict[str, Any], *, request_id: str | None = None) -> Completion:
        """POST a chat completion; `body` gets the model name added."""
        payload = orjson.dumps({"model": self._config.model, **body})
        headers = {"X-Request-ID": request_id} if request_id else None
        try:
            try:
                # The first attempt bypasses tenacity: its per-attempt bookkeeping was ~10 % of
                # a cache miss's CPU here, and almost every call succeeds at once.
                raw, status = await self._post(payload, headers)
            except _ConnectFailed:
                if not self._config.connect_retries:
                    raise
                await asyncio.sleep(_FIRST_BACKOFF_SECONDS)
                # A copy per call: a tenacity controller keeps per-run state, so sharing one
                # between concurrent calls makes them retry each other's attempts.
                async for attempt in self._retrying.copy():
                    with attempt:
                        raw, status = await self._post(payload, headers)
        except _ConnectFailed as exc:
            raise BackendUnavailable(f"model server unreachable: {exc}") from exc
        return _parse_completion(raw, status)

    async def _post(self, payload: bytes, headers: dict[str, str] | None) -> tuple[bytes, int]:
        try:
            async with self._session.post(
                self._completions_url, data=payload, headers=headers
            ) as response:
                return await response.read(), response.status
        except aiohttp.ClientConnectorError as exc:
            raise _ConnectFailed(str(exc.os_error or exc)) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise BackendTimeout("model server did not answer in time") from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            # The connection was reset or closed under us (typically a pooled keep-alive
            # connection the server was closing). A completion has no side effect, so sending
            # it again on a fresh connection is safe.
            raise _ConnectFailed(type(exc).__name__) from exc
        except aiohttp.ClientError as exc:
            reason = type(exc).__name__
            raise BackendUnavailable(f"model server connection failed: {reason}") from exc

    async def ready(self) -> bool:
        """True when the model server lists our model (used by /readyz)."""
        try:
            async with self._session.get(
                self._models_url, timeout=aiohttp.ClientTimeout(total=self._config.connect_timeout)
            ) as response:
                if response.status != 200:
                    return False
                listed = orjson.loads(await response.read())
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError):
            return False
        return any(item.get("id") == self._config.model for item in listed.get("data", []))


def _parse_completion(raw: bytes, status: int) -> Completion:
    if status >= 500:
        raise BackendError(f"model server answered HTTP {status}")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BackendError("model server answered with invalid JSON") from exc
    if status == 400 and _is_context_overflow(document):
        raise InvalidRequest(
            "input and policy together are too long for the model's context window",
            param="input",
        )
    if status != 200:
        raise BackendError(f"model server answered HTTP {status}")
    try:
        choice = document["choices"][0]
        message = choice["message"]
        usage = document.get("usage") or {}
        return Completion(
            text=str(message["content"] or ""),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
            reasoning=_reasoning(message),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BackendError("model server answered without a completion") from exc


def _reasoning(message: Any) -> str | None:
    """The reasoning field: `reasoning` (vLLM >= 0.10), `reasoning_content` (older vLLM)."""
    for name in ("reasoning", "reasoning_content"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _is_context_overflow(document: Any) -> bool:
    message = ""
    if isinstance(document, dict):
        error = document.get("error", document)
        if isinstance(error, dict):
            message = str(error.get("message", ""))
    lowered = message.lower()
    return "context length" in lowered or "maximum context" in lowered or "too long" in lowered
