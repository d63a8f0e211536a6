"""GET /healthz (alive), GET /readyz (can serve moderation now), GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import NotReady
from ..gateway_state import gateway_state
from ..lifecycle import DRAINING
from ..metrics import render_latest
from ..responses import JSONBytesResponse, error_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONBytesResponse:
    return JSONBytesResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: model server answering, cache reachable or disabled")
async def readyz(request: Request) -> JSONBytesResponse:
    if DRAINING.is_set():
        return error_response(NotReady("shutting down"))
    gateway = gateway_state(request.app)
    model_ready = await gateway.backend.ready()
    cache_ok = await gateway.cache.ping()
    checks = {
        "model_server": "ok" if model_ready else "unavailable",
        "cache": ("ok" if cache_ok else "unavailable") if gateway.cache.enabled else "disabled",
    }
    cache_blocks = gateway.settings.readiness_requires_cache and not cache_ok
    if not model_ready or cache_blocks:
        detail = ", ".join(f"{name} {status}" for name, status in checks.items())
        return error_response(NotReady(f"not ready: {detail}"))
    return JSONBytesResponse({"status": "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
