"""GET /playground (the policy playground page) and GET /playground/static/{name} (its assets).

The page is three static files shipped in the package (`rsafe_gateway/playground/`) that use the
public API only (`/v1/policies`, `/v1/moderate`, `/v1/decisions/{id}`); the server renders
nothing. Only the file names in `ASSETS` can be served, so no request path ever reaches the file
system. Every answer carries a strict Content-Security-Policy: the page loads nothing but its own
script and style sheet and talks to nothing but this origin. The whole playground answers 404 (in
the contract's error shape) when `RSAFE_PLAYGROUND_ENABLED=false`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import NotFound
from ..gateway_state import gateway_state

router = APIRouter(tags=["playground"], include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "playground"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (cheap: ETag), so a new gateway version never runs an old app.js.
    "Cache-Control": "no-cache",
}

# The only files the playground serves: name -> content type.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def load_asset(name: str) -> Asset:
    """Read one allow-listed file once per process; an unknown name is a KeyError, never a path."""
    media_type = ASSETS[name]
    body = (STATIC_DIR / name).read_bytes()
    return Asset(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def _ensure_enabled(request: Request) -> None:
    if not gateway_state(request.app).settings.playground_enabled:
        raise NotFound("the playground is disabled (RSAFE_PLAYGROUND_ENABLED=false)")


def _serve(request: Request, name: str) -> Response:
    asset = load_asset(name)
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get("/playground")
async def playground_page(request: Request) -> Response:
    _ensure_enabled(request)
    return _serve(request, "index.html")


@router.get("/playground/static/{name}")
async def playground_asset(name: str, request: Request) -> Response:
    _ensure_enabled(request)
    if name not in ASSETS or name == "index.html":
        raise NotFound("no such playground file", param="name")
    return _serve(request, name)
