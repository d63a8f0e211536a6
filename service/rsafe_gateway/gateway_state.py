"""The clients one running gateway holds, as one typed object on `app.state.gateway`.

Built by the app's lifespan (`app.py`) once its connections are open; read by the routes and
the admission middleware through `gateway_state`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the app imports them all; here they are types only
    from .backend import ModelBackend
    from .cache import DecisionCache
    from .chat_proxy.serving import ChatProxy
    from .decision_log.runtime import DecisionLog
    from .rate_limit import RateLimiter
    from .service import ModerationService
    from .settings import Settings
    from .tenants import TenantDirectory


@dataclass(frozen=True, slots=True)
class GatewayState:
    settings: Settings
    service: ModerationService
    backend: ModelBackend  # /readyz asks it
    cache: DecisionCache  # /readyz pings it
    rate_limiter: RateLimiter | None  # None: no rate limit configured
    tenants: TenantDirectory | None  # the API keys (None: auth off), reloaded with the policies
    decision_log: DecisionLog | None  # None: RSAFE_DATABASE_URL is not set
    chat_proxy: ChatProxy | None  # None: RSAFE_UPSTREAM_URL is not set


def gateway_state(app: Any) -> GatewayState:
    """The running gateway's state, from the Starlette app (`request.app`, `scope["app"]`)."""
    state: GatewayState = app.state.gateway
    return state
