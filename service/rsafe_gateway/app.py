"""Assemble the FastAPI application: clients on `app.state`, routers, middleware, error handlers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from . import __version__
from .access_log import AccessLogMiddleware
from .auth import ApiKeyAuthenticator
from .backend import BackendConfig, ModelBackend
from .body_limit import BodyLimitMiddleware
from .cache import DecisionCache, connect_redis
from .exception_handlers import install_exception_handlers
from .guard import ApiGuardMiddleware
from .host_check import HostCheckMiddleware, allowed_host_names
from .logging_setup import AccessLineWriter, configure_logging
from .metrics import BUILD_INFO
from .policy_store import SHIPPED_POLICY_DIR, PolicyStore
from .prompt import TEMPLATE_VERSION
from .rate_limit import RateLimiter
from .routes import health, moderation, playground, policies
from .routes.json_body import add_request_body_schemas
from .service import ModerationService
from .settings import Settings, get_settings

logger = logging.getLogger("rsafe_gateway")


def build_policy_store(settings: Settings) -> PolicyStore:
    directories: list[Path] = [settings.shipped_policy_dir or SHIPPED_POLICY_DIR]
    if settings.policy_dir is not None:
        directories.append(settings.policy_dir)
    return PolicyStore(directories, settings.default_policy_id)


def _start_policy_reloading(store: PolicyStore, interval: float) -> asyncio.Task[None] | None:
    """SIGHUP reloads the policies; so does a file change, checked every `interval` seconds."""
    loop = asyncio.get_running_loop()
    # Only possible in the main thread (a real server); an in-process test client has the watcher.
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, store.reload)
    if interval <= 0:
        return None
    return asyncio.create_task(store.watch(interval), name="policy-watcher")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app. Policies are validated here, so a bad file stops start-up."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    policy_store = build_policy_store(settings)
    # Read and checked at start-up: a malformed hash file stops the gateway, it is not ignored.
    authenticator = ApiKeyAuthenticator(settings.key_hashes()) if settings.auth_enabled else None
    BUILD_INFO.labels(__version__, settings.model_name, TEMPLATE_VERSION).set(1)
    access_log = AccessLineWriter("rsafe_gateway.access", settings.access_log_flush_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        backend = ModelBackend(
            BackendConfig(
                base_url=settings.model_server_url,
                model=settings.model_name,
                api_key=settings.model_server_api_key,
                connect_timeout=settings.connect_timeout_seconds,
                read_timeout=settings.read_timeout_seconds,
                connect_retries=settings.connect_retries,
                max_connections=settings.max_connections,
            )
        )
        redis = connect_redis(settings.redis_url, timeout_seconds=settings.redis_timeout_seconds)
        cache = DecisionCache(
            redis,
            ttl_seconds=settings.cache_ttl_seconds,
            local_items=settings.local_cache_items,
            local_ttl_seconds=settings.local_cache_ttl_seconds,
            max_value_bytes=settings.cache_max_value_bytes,
        )
        app.state.settings = settings
        app.state.authenticator = authenticator
        app.state.rate_limiter = (
            RateLimiter(
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
                redis,
                settings.cache_key_prefix,
            )
            if settings.rate_limit_per_second > 0
            else None
        )
        app.state.backend = backend
        app.state.cache = cache
        app.state.service = ModerationService(settings, backend, cache, policy_store)
        app.state.shutting_down = False
        watcher = _start_policy_reloading(policy_store, settings.policy_reload_interval_seconds)
        try:
            yield
        finally:
            app.state.shutting_down = True
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await backend.close()
            await cache.close()
            access_log.flush()

    app = FastAPI(
        title="RSafe moderation gateway",
        version=__version__,
        summary="Policy-guided reasoning moderation for LLM apps, in front of a vLLM-served "
        "RSafe checkpoint.",
        lifespan=lifespan,
    )
    # First in the list: the router tries routes in order, and these carry nearly all traffic.
    app.router.routes[0:0] = moderation.routes
    app.include_router(policies.router)
    app.include_router(health.router)
    app.include_router(playground.router)
    install_exception_handlers(app)
    app.openapi = lambda: _openapi_without_422(app)  # type: ignore[method-assign]
    # Added last = outermost. In the order they run: the access log gives the request its id,
    # the host check and then admission (key, rate limit, per-key cap) run before the body is
    # read, the body is read within its limits, then the app.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        read_timeout_seconds=settings.body_read_timeout_seconds,
    )
    if (
        authenticator is not None
        or settings.rate_limit_per_second > 0
        or settings.max_concurrent_requests_per_key > 0
    ):
        app.add_middleware(
            ApiGuardMiddleware,
            authenticator=authenticator,
            metrics_auth=settings.metrics_auth,
            max_concurrent_per_key=settings.max_concurrent_requests_per_key,
        )
    allowed_hosts = allowed_host_names(settings)
    if allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, allowed=allowed_hosts)
    app.add_middleware(AccessLogMiddleware, writer=access_log)
    return app


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every route; this gateway answers validation errors with 400."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            routes=[*app.routes, *moderation.documentation.routes],
        )
        add_request_body_schemas(schema)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` and for each worker process."""
    return create_app(get_settings())
