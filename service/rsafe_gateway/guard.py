"""Authentication and rate limiting of the API routes, as one pure ASGI middleware.

Installed only when API keys or a rate limit are configured, so an open local gateway pays
nothing for it. Protected: every `/v1/...` route, and `/metrics` when RSAFE_METRICS_AUTH is set.
Open: `/healthz`, `/readyz`, `/docs`, `/openapi.json` and the playground page (its API calls carry
the key). The caller's key id (never the key) goes to the access log.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .auth import ApiKeyAuthenticator
from .errors import GatewayError
from .rate_limit import RateLimiter
from .responses import error_response
from .tenants import RateLimit


class ApiGuardMiddleware:
    def __init__(
        self, app: ASGIApp, authenticator: ApiKeyAuthenticator | None, metrics_auth: bool
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.metrics_auth = metrics_auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        is_api = path.startswith("/v1/")
        is_metrics = path == "/metrics" and self.metrics_auth
        if not (is_api or is_metrics):
            await self.app(scope, receive, send)
            return
        try:
            caller, own_limit = self._caller(scope)
            limiter: RateLimiter | None = scope["app"].state.rate_limiter
            if is_api and limiter is not None:
                await limiter.check(caller, own_limit)
        except GatewayError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _caller(self, scope: Scope) -> tuple[str, RateLimit | None]:
        if self.authenticator is None:
            client = scope.get("client")
            return (str(client[0]) if client else "unknown"), None
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        principal = self.authenticator.admit(authorization)
        state = scope.setdefault("state", {})
        state["key_id"] = principal.key_id
        state["principal"] = principal  # tenant and scopes, read by the routes (tenants.py)
        return str(principal.key_id), principal.rate_limit
