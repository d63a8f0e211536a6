"""Admission of the API routes, as one pure ASGI middleware, BEFORE the request body is read:
the API key, the rate limit's first token, and the per-key cap on requests in progress.

Installed only when API keys, a rate limit or a concurrency cap are configured, so an open local
gateway pays nothing for it. Protected: every `/v1/...` route, and `/metrics` when
RSAFE_METRICS_AUTH is set. Open: `/healthz`, `/readyz`, `/docs`, `/openapi.json` and the
playground page (its API calls carry the key). The caller's key id (never the key) goes to the
access log and the caller (key id, or client address without auth) to the fan-out routes, which
charge their further model calls to it: both through the request's context (`request_context.py`).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import ApiKeyAuthenticator
from .errors import GatewayError, RateLimited
from .gateway_state import gateway_state
from .metrics import CONCURRENCY_LIMITED
from .request_context import request_context
from .responses import error_response
from .tenants import RateLimit


class ApiGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        authenticator: ApiKeyAuthenticator | None,
        metrics_auth: bool,
        max_concurrent_per_key: int = 0,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.metrics_auth = metrics_auth
        self.max_concurrent = max_concurrent_per_key
        # Requests in progress per caller (only callers with one or more are kept).
        self._active: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        is_api = path.startswith("/v1/")
        is_metrics = path == "/metrics" and self.metrics_auth
        if not (is_api or is_metrics):
            await self.app(scope, receive, send)
            return
        try:
            caller, own_limit = self._caller(scope)
            limiter = gateway_state(scope["app"]).rate_limiter
            if is_api and limiter is not None:
                await limiter.check(caller, own_limit)
        except GatewayError as exc:
            await error_response(exc)(scope, receive, send)
            return
        if not (is_api and self.max_concurrent):
            await self.app(scope, receive, send)
            return
        active = self._active.get(caller, 0)
        if active >= self.max_concurrent:
            CONCURRENCY_LIMITED.inc()
            refused = RateLimited(
                f"this API key already has {active} requests in progress "
                "(RSAFE_MAX_CONCURRENT_REQUESTS_PER_KEY)",
                retry_after_seconds=1,
            )
            await error_response(refused)(scope, receive, send)
            return
        self._active[caller] = active + 1
        try:
            await self.app(scope, receive, send)
        finally:
            remaining = self._active[caller] - 1
            if remaining:
                self._active[caller] = remaining
            else:
                del self._active[caller]

    def _caller(self, scope: Scope) -> tuple[str, RateLimit | None]:
        """The caller, and its key's own rate limit (None: the gateway-wide one)."""
        context = request_context(scope)
        own_limit = None
        if self.authenticator is None:
            client = scope.get("client")
            caller = str(client[0]) if client else "unknown"
        else:
            authorization = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                    break
            principal = self.authenticator.admit(authorization)
            context.key_id = principal.key_id
            context.principal = principal  # tenant and scopes, read by the routes (tenants.py)
            caller = str(principal.key_id)
            own_limit = principal.rate_limit
        context.caller = caller
        context.own_limit = own_limit
        return caller, own_limit
