"""Route dependencies: who is calling (API key) and whether they may (rate limit)."""

from __future__ import annotations

from fastapi import Request

from .auth import ApiKeyAuthenticator
from .rate_limit import RateLimiter


async def guard_api(request: Request) -> None:
    """Authenticate (when keys are on) and rate-limit the caller of a /v1 route."""
    state = request.app.state
    authenticator: ApiKeyAuthenticator | None = state.authenticator
    if authenticator is not None:
        caller = authenticator.authenticate(request.headers.get("authorization"))
        request.state.key_id = caller
    else:
        caller = request.client.host if request.client else "unknown"
    limiter: RateLimiter | None = state.rate_limiter
    if limiter is not None:
        await limiter.check(caller)


async def guard_metrics(request: Request) -> None:
    """`/metrics` is open unless RSAFE_METRICS_AUTH asks for a key (no rate limit: scrapers)."""
    authenticator: ApiKeyAuthenticator | None = request.app.state.authenticator
    if authenticator is not None and request.app.state.settings.metrics_auth:
        authenticator.authenticate(request.headers.get("authorization"))
