"""GET /healthz (alive), GET /readyz (can serve moderation now), GET /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..lifecycle import DRAINING
from ..metrics import render_latest
from ..responses import JSONBytesResponse, error_body

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> JSONBytesResponse:
    return JSONBytesResponse({"status": "ok"})


@router.get("/readyz", summary="Readiness: model server answering, cache reachable or disabled")
async def readyz(request: Request) -> JSONBytesResponse:
    state = request.app.state
    if DRAINING.is_set() or getattr(state, "shutting_down", False):
        return JSONBytesResponse(
            error_body("backend_unavailable", "shutting down"), status_code=503
        )
    model_ready = await state.backend.ready()
    cache_ok = await state.cache.ping()
    checks = {
        "model_server": "ok" if model_ready else "unavailable",
        "cache": ("ok" if cache_ok else "unavailable") if state.cache.enabled else "disabled",
    }
    cache_blocks = state.settings.readiness_requires_cache and not cache_ok
    if not model_ready or cache_blocks:
        detail = ", ".join(f"{name} {status}" for name, status in checks.items())
        return JSONBytesResponse(
            error_body("backend_unavailable", f"not ready: {detail}"), status_code=503
        )
    return JSONBytesResponse({"status": "ready", "checks": checks})


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_latest()
    return Response(body, media_type=content_type)
