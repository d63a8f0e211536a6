"""What the gateway knows about one HTTP request, passed between its middleware and its routes.

The access log middleware (outermost) creates it with the request id; admission fills in the
caller; the route adds its log fields; the access log writes them when the request ends. It lives
in the ASGI scope under one key, read only through `request_context`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.types import Scope

from .request_id import new_request_id
from .tenants import Principal, RateLimit

_SCOPE_KEY = "rsafe.request"


@dataclass(slots=True)
class RequestContext:
    request_id: str
    # Set by admission (guard.py) when it runs: the key's id (never the key), its principal
    # (tenant, scopes), the rate-limit bucket it pays into and that key's own limit.
    key_id: str | None = None
    principal: Principal | None = None
    caller: str | None = None
    own_limit: RateLimit | None = None
    # The route's own fields for the access log line (verdict, cached, policy id, ...).
    log: dict[str, Any] = field(default_factory=dict)


def open_request_context(scope: Scope, request_id: str) -> RequestContext:
    """A new context for this request, put into its scope (by the access log middleware)."""
    context = scope[_SCOPE_KEY] = RequestContext(request_id)
    return context


def request_context(scope: Scope) -> RequestContext:
    """This request's context (a fresh one if no middleware opened it, e.g. a bare test app)."""
    context: RequestContext | None = scope.get(_SCOPE_KEY)  # only ever set above
    if context is None:
        context = open_request_context(scope, new_request_id())
    return context
