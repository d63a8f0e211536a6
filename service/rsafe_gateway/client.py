"""Python client for the gateway's HTTP API: `RSafeClient` (sync) and `AsyncRSafeClient` (async).

    from rsafe_gateway.client import RSafeClient

    with RSafeClient("http://127.0.0.1:8080", api_key="...") as client:
        answer = client.moderate("How do I pick a lock?", policy_id="rsafe-default")
        if answer.flagged:
            ...

Answers are the gateway's own wire models (`rsafe_gateway.protocol`). Every non-2xx answer is
raised as `RSafeAPIError` (status, type, message, param, as in the README's error table); a
gateway that cannot be reached or does not answer in time raises `RSafeConnectionError`. Both
derive from `RSafeError`.

One client keeps one pooled httpx connection pool: create it once and reuse it (or use it as a
context manager). httpx is fine here, on the caller's side of the gateway; at high concurrency
(dozens of requests in flight from one process) its pool is known to slow down, so keep a bulk
caller's concurrency moderate (the `rsafe` CLI defaults to 8) or spread load over processes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import ValidationError

from .protocol import (
    ErrorResponse,
    Message,
    ModerationRequest,
    ModerationResponse,
    PolicyDetail,
    PolicyList,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncRSafeClient",
    "ModerationInput",
    "RSafeAPIError",
    "RSafeClient",
    "RSafeConnectionError",
    "RSafeError",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_BATCH_SIZE = 64  # the gateway's default RSAFE_MAX_BATCH_ITEMS

# A string (a prompt check) or a conversation of {role, content} messages.
ModerationInput = str | Sequence[Message | Mapping[str, str]]
# One item of a batch: a ModerationRequest, or a mapping with the same fields.
BatchItem = ModerationRequest | Mapping[str, Any]

_T = TypeVar("_T", ModerationResponse, PolicyList, PolicyDetail)

# The HTTP status an `error.type` comes with (a batch item's error carries only the type).
_STATUS_BY_TYPE = {
    "invalid_request": 400,
    "unauthorized": 401,
    "payload_too_large": 413,
    "rate_limited": 429,
    "internal": 500,
    "backend_error": 502,
    "backend_unavailable": 503,
    "backend_timeout": 504,
}


class RSafeError(Exception):
    """Base class of the client's errors."""


class RSafeAPIError(RSafeError):
    """The gateway answered with an error: `{"error": {type, message, param}}`."""

    def __init__(self, status: int, type: str, message: str, param: str | None = None) -> None:
        super().__init__(
            f"HTTP {status} {type}: {message}" + (f" (param: {param})" if param else "")
        )
        self.status = status
        self.type = type
        self.message = message
        self.param = param

    def to_dict(self) -> dict[str, Any]:
        """The error in the gateway's wire shape."""
        return {"error": {"type": self.type, "message": self.message, "param": self.param}}

    def __repr__(self) -> str:
        return (
            f"RSafeAPIError(status={self.status}, type={self.type!r}, "
            f"message={self.message!r}, param={self.param!r})"
        )


class RSafeConnectionError(RSafeError):
    """The gateway could not be reached, or did not answer in time."""


def _message_dict(message: Message | Mapping[str, str]) -> dict[str, str]:
    if isinstance(message, Message):
        return {"role": message.role.value, "content": message.content}
    return dict(message)


def moderation_payload(
    input: ModerationInput,
    *,
    target: str | None = None,
    policy: str | None = None,
    policy_id: str | None = None,
    reasoning: bool = True,
    cache: bool = True,
) -> dict[str, Any]:
    """The JSON body of POST /v1/moderate (fields left at their default are left out)."""
    payload: dict[str, Any] = {
        "input": input if isinstance(input, str) else [_message_dict(m) for m in input]
    }
    if target is not None:
        payload["target"] = target
    if policy is not None:
        payload["policy"] = policy
    if policy_id is not None:
        payload["policy_id"] = policy_id
    if not reasoning:
        payload["reasoning"] = False
    if not cache:
        payload["cache"] = False
    return payload


def _batch_item(item: BatchItem) -> dict[str, Any]:
    if isinstance(item, ModerationRequest):
        return item.model_dump(mode="json", exclude_unset=True)
    return dict(item)


def _api_error(response: httpx.Response) -> RSafeAPIError:
    try:
        info = ErrorResponse.model_validate_json(response.content).error
    except ValidationError:
        text = response.text.strip()[:300] or response.reason_phrase
        return RSafeAPIError(response.status_code, "http_error", text)
    return RSafeAPIError(response.status_code, info.type, info.message, info.param)


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise _api_error(response)
    return response


def _parse(model: type[_T], response: httpx.Response) -> _T:
    try:
        return model.model_validate_json(_checked(response).content)
    except ValidationError as exc:
        raise RSafeAPIError(
            response.status_code, "invalid_response", f"unexpected answer from the gateway: {exc}"
        ) from exc


_ITEM_PARAM = re.compile(r"^items\[(\d+)\]")


def _item_param(param: str | None, offset: int) -> str | None:
    """`items[k]…` of a chunk that starts at `offset` → `items[offset + k]…` of the whole batch."""
    if param is None or offset == 0:
        return param
    return _ITEM_PARAM.sub(lambda m: f"items[{int(m.group(1)) + offset}]", param)


def _parse_batch(
    response: httpx.Response, offset: int = 0
) -> list[ModerationResponse | RSafeAPIError]:
    try:
        document = orjson.loads(_checked(response).content)
        results: list[ModerationResponse | RSafeAPIError] = []
        for item in document["results"]:
            if isinstance(item, dict) and "error" in item:
                info = ErrorResponse.model_validate(item).error
                status = _STATUS_BY_TYPE.get(info.type, 500)
                param = _item_param(info.param, offset)
                results.append(RSafeAPIError(status, info.type, info.message, param))
            else:
                results.append(ModerationResponse.model_validate(item))
        return results
    except (orjson.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
        raise RSafeAPIError(
            response.status_code, "invalid_response", f"unexpected answer from the gateway: {exc}"
        ) from exc


def _chunks(items: Iterable[BatchItem], size: int) -> list[list[dict[str, Any]]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    chunks: list[list[dict[str, Any]]] = [[]]
    for item in items:
        if len(chunks[-1]) == size:
            chunks.append([])
        chunks[-1].append(_batch_item(item))
    return [chunk for chunk in chunks if chunk]


class _Base:
    def __init__(
        self, base_url: str | None, api_key: str | None, timeout: float | httpx.Timeout
    ) -> None:
        self.base_url = (base_url or os.environ.get("RSAFE_URL") or DEFAULT_BASE_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("RSAFE_API_KEY")
        self._headers = {"Accept": "application/json", "User-Agent": "rsafe-client/0.1"}
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)

    @staticmethod
    def _request_headers(request_id: str | None) -> dict[str, str] | None:
        return {"X-Request-ID": request_id} if request_id else None


class RSafeClient(_Base):
    """Synchronous client; thread-safe, one connection pool per client."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        max_connections: int = 16,
    ) -> None:
        """`base_url` defaults to $RSAFE_URL, then http://127.0.0.1:8080; `api_key` to
        $RSAFE_API_KEY (sent as `Authorization: Bearer …`)."""
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        headers = self._request_headers(request_id) or {}
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            return self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise RSafeConnectionError(f"{self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise RSafeConnectionError(f"cannot reach {self.base_url}: {exc}") from exc

    def moderate(
        self,
        input: ModerationInput,
        *,
        target: str | None = None,
        policy: str | None = None,
        policy_id: str | None = None,
        reasoning: bool = True,
        cache: bool = True,
        request_id: str | None = None,
    ) -> ModerationResponse:
        """Judge a text (prompt check) or a conversation against a policy (POST /v1/moderate)."""
        payload = moderation_payload(
            input,
            target=target,
            policy=policy,
            policy_id=policy_id,
            reasoning=reasoning,
            cache=cache,
        )
        return _parse(
            ModerationResponse, self._request("POST", "/v1/moderate", payload, request_id)
        )

    def moderate_batch(
        self, items: Iterable[BatchItem], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[ModerationResponse | RSafeAPIError]:
        """Judge many requests (POST /v1/moderate/batch), in order; an item that failed is an
        `RSafeAPIError` in its place (its `param` names the item: `items[i].…`). More than
        `batch_size` items go in several calls."""
        results: list[ModerationResponse | RSafeAPIError] = []
        for chunk in _chunks(items, batch_size):
            response = self._request("POST", "/v1/moderate/batch", {"items": chunk})
            results.extend(_parse_batch(response, offset=len(results)))
        return results

    def policies(self) -> PolicyList:
        """The named policies (GET /v1/policies)."""
        return _parse(PolicyList, self._request("GET", "/v1/policies"))

    def policy(self, policy_id: str) -> PolicyDetail:
        """One named policy with its text (GET /v1/policies/{id})."""
        path = f"/v1/policies/{quote(policy_id, safe='')}"
        return _parse(PolicyDetail, self._request("GET", path))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRSafeClient(_Base):
    """Asynchronous client; share one per event loop."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT_SECONDS,
        max_connections: int = 16,
    ) -> None:
        """`base_url` defaults to $RSAFE_URL, then http://127.0.0.1:8080; `api_key` to
        $RSAFE_API_KEY (sent as `Authorization: Bearer …`)."""
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        headers = self._request_headers(request_id) or {}
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            return await self._http.request(method, path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise RSafeConnectionError(f"{self.base_url} did not answer in time") from exc
        except httpx.TransportError as exc:
            raise RSafeConnectionError(f"cannot reach {self.base_url}: {exc}") from exc

    async def moderate(
        self,
        input: ModerationInput,
        *,
        target: str | None = None,
        policy: str | None = None,
        policy_id: str | None = None,
        reasoning: bool = True,
        cache: bool = True,
        request_id: str | None = None,
    ) -> ModerationResponse:
        """Judge a text (prompt check) or a conversation against a policy (POST /v1/moderate)."""
        payload = moderation_payload(
            input,
            target=target,
            policy=policy,
            policy_id=policy_id,
            reasoning=reasoning,
            cache=cache,
        )
        response = await self._request("POST", "/v1/moderate", payload, request_id)
        return _parse(ModerationResponse, response)

    async def moderate_batch(
        self, items: Iterable[BatchItem], *, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> list[ModerationResponse | RSafeAPIError]:
        """Judge many requests (POST /v1/moderate/batch), in order; an item that failed is an
        `RSafeAPIError` in its place (its `param` names the item: `items[i].…`). More than
        `batch_size` items go in several calls."""
        results: list[ModerationResponse | RSafeAPIError] = []
        for chunk in _chunks(items, batch_size):
            response = await self._request("POST", "/v1/moderate/batch", {"items": chunk})
            results.extend(_parse_batch(response, offset=len(results)))
        return results

    async def policies(self) -> PolicyList:
        """The named policies (GET /v1/policies)."""
        return _parse(PolicyList, await self._request("GET", "/v1/policies"))

    async def policy(self, policy_id: str) -> PolicyDetail:
        """One named policy with its text (GET /v1/policies/{id})."""
        path = f"/v1/policies/{quote(policy_id, safe='')}"
        return _parse(PolicyDetail, await self._request("GET", path))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
