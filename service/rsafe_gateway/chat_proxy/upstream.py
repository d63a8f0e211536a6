"""The client toward the app's own LLM server (`RSAFE_UPSTREAM_URL`): one pooled aiohttp session,
OpenAI's `/v1/chat/completions`, streamed (Server-Sent Events) or not.

aiohttp for the reason `backend.py` gives (httpx's pool collapses under concurrency). Every
aiohttp/asyncio exception is translated here, and only here, into the errors below, which the
gateway answers in its one error shape: refused or unreachable → 503, no byte within the read
timeout → 504, 5xx or a broken answer → 502, the upstream's own 4xx → the same status. No
retries: a retried generation would double the upstream's cost and the caller's wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from ..errors import BackendError, BackendTimeout, BackendUnavailable, GatewayError
from ..http_session import pooled_session


class UpstreamError(BackendError):
    """The upstream LLM answered, but not with a usable completion (502)."""


class UpstreamUnavailable(BackendUnavailable):
    """The upstream LLM refuses connections or is unreachable (503)."""


class UpstreamTimeout(BackendTimeout):
    """The upstream LLM sent nothing within RSAFE_UPSTREAM_READ_TIMEOUT_SECONDS (504)."""


class UpstreamRejected(GatewayError):
    """The upstream LLM refused the request itself (its 4xx), passed on with its status."""

    def __init__(self, status: int, message: str, param: str | None) -> None:
        super().__init__(message, param=param)
        self.status_code = status
        self.error_type = "rate_limited" if status == 429 else "invalid_request"


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    base_url: str
    api_key: str | None
    connect_timeout: float
    read_timeout: float
    max_connections: int


_DONE = b"[DONE]"


class UpstreamStream:
    """An open streamed completion (status 200). `close()` ends it: a stream read to its end
    gives its connection back to the pool, any other is dropped at once (the upstream stops)."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._finished = False

    async def events(self) -> AsyncIterator[bytes]:
        """The `data:` payload of each Server-Sent Event, up to (not including) `[DONE]`."""
        data: list[bytes] = []
        try:
            async for raw_line in self._response.content:
                line = raw_line.rstrip(b"\r\n")
                if not line:  # a blank line ends an event
                    if data:
                        payload = b"\n".join(data)
                        data.clear()
                        if payload == _DONE:
                            self._finished = True
                            return
                        yield payload
                    continue
                if line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
                # Comments (`: ping`), `event:`, `id:` and `retry:` lines carry no completion.
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("upstream LLM stopped sending within the read timeout") from exc
        except ValueError as exc:  # aiohttp: a line longer than its buffer
            raise UpstreamError("upstream LLM sent an oversized stream line") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"upstream LLM connection failed mid-stream: {type(exc).__name__}"
            ) from exc
        self._finished = True  # a stream that ends without `[DONE]` is accepted, too
        if data and b"\n".join(data) != _DONE:
            yield b"\n".join(data)  # a last event without its blank line

    def close(self) -> None:
        # Synchronous on purpose: it runs in cancelled contexts (a client that went away).
        if self._finished:
            self._response.release()  # reused only if aiohttp saw the body's end
        else:
            self._response.close()


class UpstreamClient:
    """Create inside a running event loop; `close()` at shutdown."""

    def __init__(self, config: UpstreamConfig) -> None:
        self._url = f"{config.base_url}/v1/chat/completions"
        self._session = pooled_session(
            api_key=config.api_key,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            max_connections=config.max_connections,
        )

    async def close(self) -> None:
        await self._session.close()

    async def _post(self, body: dict[str, Any], request_id: str) -> aiohttp.ClientResponse:
        try:
            response = await self._session.post(
                self._url, data=orjson.dumps(body), headers={"X-Request-ID": request_id}
            )
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamUnavailable(
                f"upstream LLM unreachable: {exc.os_error or type(exc).__name__}"
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise UpstreamTimeout("upstream LLM did not answer within the read timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(
                f"upstream LLM connection failed: {type(exc).__name__}"
            ) from exc
        if response.status != 200:
            try:
                raw = await _read(response)
            finally:
                response.release()
            raise _status_error(response.status, raw)
        return response

    async def open_stream(self, body: dict[str, Any], request_id: str) -> UpstreamStream:
        """POST a streamed completion; returns once the upstream answered 200."""
        response = await self._post(body, request_id)
        if response.content_type != "text/event-stream":
            # E.g. a server that ignores `stream`: its JSON would read as an empty stream.
            response.close()
            raise UpstreamError(f"upstream LLM did not stream (answered {response.content_type})")
        return UpstreamStream(response)

    async def complete(self, body: dict[str, Any], request_id: str) -> tuple[bytes, dict[str, Any]]:
        """POST a non-streamed completion; the upstream's answer, as sent and parsed."""
        response = await self._post(body, request_id)
        try:
            raw = await _read(response)
        finally:
            response.release()
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("upstream LLM answered with invalid JSON") from exc
        if not isinstance(document, dict):
            raise UpstreamError("upstream LLM answered without a completion")
        return raw, document


async def _read(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout("upstream LLM did not finish its answer in time") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(f"upstream LLM connection failed: {type(exc).__name__}") from exc


def _status_error(status: int, raw: bytes) -> GatewayError:
    if status >= 500 or status in {401, 403}:
        # 401/403: the gateway's own upstream credentials are wrong, not the caller's fault.
        return UpstreamError(f"upstream LLM answered HTTP {status}")
    message, param = f"upstream LLM refused the request (HTTP {status})", None
    try:
        error = orjson.loads(raw).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict):
        message = f"upstream LLM: {str(error.get('message', ''))[:500]}"
        param = error.get("param") if isinstance(error.get("param"), str) else None
    elif isinstance(error, str):
        message = f"upstream LLM: {error[:500]}"
    return UpstreamRejected(status, message, param)
