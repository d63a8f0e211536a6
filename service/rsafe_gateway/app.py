"""Assemble the FastAPI application: clients on `app.state.gateway`, routers, middleware, error
handlers."""

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

from . import __version__, chat_proxy
from .access_log import AccessLogMiddleware
from .auth import ApiKeyAuthenticator
from .backend import BackendConfig, ModelBackend
from .body_limit import BodyLimitMiddleware
from .cache import DecisionCache, connect_redis
from .decision_log import routes as decision_routes
from .decision_log.appeal import build_appeal_service
from .decision_log.runtime import DecisionLog
from .exception_handlers import install_exception_handlers
from .families import format_for
from .gateway_state import GatewayState
from .guard import ApiGuardMiddleware
from .host_check import HostCheckMiddleware, allowed_host_names
from .logging_setup import AccessLineWriter, configure_logging
from .metrics import BUILD_INFO
from .policy_store import SHIPPED_POLICY_DIR, PolicyStore
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


def _start_policy_reloading(gateway: GatewayState, interval: float) -> list[asyncio.Task[None]]:
    """SIGHUP reloads the policies (and the keys file); so does a file change, checked every
    `interval` seconds."""
    store, keys = gateway.service.policies, gateway.tenants
    loop = asyncio.get_running_loop()

    def reload_all() -> None:
        store.reload()
        if keys is not None:
            keys.reload()

    # Only possible in the main thread (a real server); an in-process test client has the watcher.
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGHUP, reload_all)
    if interval <= 0:
        return []
    watchers = [asyncio.create_task(store.files.watch(interval), name="policy-watcher")]
    if keys is not None:
        watchers.append(asyncio.create_task(keys.files.watch(interval), name="keys-watcher"))
    return watchers


async def _start_decision_log(
    settings: Settings, backend: ModelBackend, cache: DecisionCache, policies: PolicyStore
) -> tuple[DecisionLog | None, ModelBackend | None]:
    """The decision log when RSAFE_DATABASE_URL is set, with its appeal service."""
    if settings.database_url is None:
        return None, None
    decision_log = DecisionLog(settings, settings.database_url)
    decision_log.appeals, appeal_backend = build_appeal_service(settings, backend, cache, policies)
    await decision_log.start()
    return decision_log, appeal_backend


def create_app(settings: Settings | None = None) -> FastAPI:
    """The gateway as an ASGI app. Policies are validated here, so a bad file stops start-up."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    policy_store = build_policy_store(settings)
    # Read and checked at start-up: a malformed hash file stops the gateway, it is not ignored.
    if settings.api_keys_file is not None and not settings.auth_enabled:
        raise ValueError("RSAFE_API_KEYS_FILE is set but RSAFE_AUTH_ENABLED is false")
    authenticator = (
        ApiKeyAuthenticator(settings.key_hashes(), settings.api_keys_file)
        if settings.auth_enabled
        else None
    )
    # Per-key rate limits need the limiter even without a gateway-wide one.
    rate_limited = settings.rate_limit_per_second > 0 or settings.api_keys_file is not None
    served = format_for(settings)
    build = (__version__, settings.model_name, served.template_version, served.family)
    BUILD_INFO.labels(*build).set(1)
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
        rate_limiter = (
            RateLimiter(
                settings.rate_limit_per_second,
                settings.rate_limit_burst,
                redis,
                settings.cache_key_prefix,
            )
            if rate_limited
            else None
        )
        decision_log, appeal_backend = await _start_decision_log(
            settings, backend, cache, policy_store
        )
        service = ModerationService(
            settings,
            backend,
            cache,
            policy_store,
            decision_log=decision_log.writer if decision_log is not None else None,
        )
        proxy = chat_proxy.open_proxy(settings, service)
        gateway = GatewayState(
            settings=settings,
            service=service,
            backend=backend,
            cache=cache,
            rate_limiter=rate_limiter,
            tenants=authenticator.directory if authenticator is not None else None,
            decision_log=decision_log,
            chat_proxy=proxy,
        )
        app.state.gateway = gateway
        watchers = _start_policy_reloading(gateway, settings.policy_reload_interval_seconds)
        try:
            yield
        finally:
            for watcher in watchers:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if proxy is not None:
                await proxy.close()
            if decision_log is not None:
                await decision_log.close()  # flushes the buffered decisions
            if appeal_backend is not None:
                await appeal_backend.close()
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
    chat_proxy.install_routes(app, settings)  # POST /v1/chat/completions, if an upstream is set
    app.include_router(decision_routes.router)
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
    if authenticator is not None or rate_limited or settings.max_concurrent_requests_per_key > 0:
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
