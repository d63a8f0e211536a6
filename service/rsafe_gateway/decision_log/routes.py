"""/v1/decisions: read the decision log, appeal a decision, record a human review.

Who may do what (scopes of the caller's key, see tenants.py):
- `GET /v1/decisions/{id}`: `decisions:read`, own tenant only (another tenant's id is a 404);
  `admin`: any tenant.
- `GET /v1/decisions` (filters, cursor pages): `admin` only (403 otherwise).
- `POST /v1/decisions/{id}/appeal`: `moderate`, own tenant only; `admin`: any.
- `POST /v1/decisions/{id}/review`: `admin` only.
Without RSAFE_DATABASE_URL these answer 404 (the log is off).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from rsafe_core.verdict import Verdict

from ..errors import NotFound
from ..gateway_state import gateway_state
from ..metrics import DECISIONS_OVERTURNED
from ..protocol import ErrorResponse
from ..request_context import request_context
from ..routes.json_body import json_body_openapi, read_json_body
from ..tenants import Principal, principal_of
from .appeal import appeal
from .protocol import (
    AppealRequest,
    AppealResponse,
    DecisionDetail,
    DecisionPage,
    DecisionView,
    ReviewRequest,
    ReviewView,
)
from .runtime import DecisionLog
from .store import DecisionFilter

# PostgreSQL text cannot hold NUL: a caller's NUL is a 400 here, not a failed query (a 503).
_NO_NUL = r"^[^\x00]*$"
TextQuery = Annotated[str | None, Query(pattern=_NO_NUL, max_length=256)]
DecisionId = Annotated[str, Path(pattern=_NO_NUL, max_length=256)]

router = APIRouter(tags=["decisions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "invalid request (the field is named in error.param)",
        401: "missing or wrong API key",
        403: "the key lacks the scope",
        404: "no such decision for this tenant, or the decision log is off",
        503: "the decision log (PostgreSQL) is unavailable",
    }.items()
}


def _log(request: Request) -> DecisionLog:
    log = gateway_state(request.app).decision_log
    if log is None:
        raise NotFound("the decision log is off (set RSAFE_DATABASE_URL)")
    return log


def _principal(request: Request, scope: str) -> Principal:
    admitted = request_context(request.scope).principal
    principal = principal_of(admitted, gateway_state(request.app).settings.auth_enabled)
    principal.require(scope)
    return principal


async def _original(log: DecisionLog, decision_id: str, principal: Principal) -> dict[str, Any]:
    found = await log.store.get(decision_id, None if principal.is_admin else principal.tenant)
    if found is None or found[0]["kind"] != "decision":
        raise NotFound(f"no decision {decision_id!r}", param="decision_id")
    return found[0]


@router.get(
    "/v1/decisions/{decision_id}",
    response_model=DecisionDetail,
    responses=_ERRORS,
    summary="One logged decision with its appeals and reviews",
)
async def get_decision(decision_id: DecisionId, request: Request) -> DecisionDetail:
    log = _log(request)
    principal = _principal(request, "decisions:read")
    found = await log.store.get(decision_id, None if principal.is_admin else principal.tenant)
    if found is None:
        raise NotFound(f"no decision {decision_id!r}", param="decision_id")
    decision, appeals, reviews = found
    return DecisionDetail(
        decision=DecisionView.model_validate(decision),
        appeals=[DecisionView.model_validate(row) for row in appeals],
        reviews=[ReviewView.model_validate(row) for row in reviews],
    )


@router.get(
    "/v1/decisions",
    response_model=DecisionPage,
    responses=_ERRORS,
    summary="Logged decisions, newest first, filtered, a page at a time (admin)",
)
async def list_decisions(
    request: Request,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    verdict: Verdict | None = None,
    policy_id: TextQuery = None,
    tenant: TextQuery = None,
    model_family: TextQuery = None,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", pattern=_NO_NUL, max_length=256),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DecisionPage:
    log = _log(request)
    _principal(request, "admin")
    where = DecisionFilter(
        since=since,
        until=until,
        verdict=verdict.value if verdict is not None else None,
        policy_id=policy_id,
        tenant=tenant,
        model_family=model_family,
    )
    rows, next_cursor = await log.store.page(where, cursor, limit)
    return DecisionPage(
        decisions=[DecisionView.model_validate(row) for row in rows], next_cursor=next_cursor
    )


@router.post(
    "/v1/decisions/{decision_id}/appeal",
    response_model=AppealResponse,
    responses=_ERRORS,
    summary="Re-judge a decision with the appeal settings; logged, linked to the original",
    openapi_extra=json_body_openapi(AppealRequest),
)
async def appeal_decision(decision_id: DecisionId, request: Request) -> AppealResponse:
    log = _log(request)
    principal = _principal(request, "moderate")
    body = await read_json_body(request, AppealRequest)
    original = await _original(log, decision_id, principal)
    assert log.appeals is not None  # set by the app with the log
    record, overturned = await appeal(
        log.appeals,
        log.writer,
        original,
        body.input,
        body.policy,
        principal,
        request_context(request.scope).request_id,
    )
    return AppealResponse(
        appeal=DecisionView.model_validate(record, from_attributes=True),
        original_id=original["id"],
        overturned=overturned,
    )


@router.post(
    "/v1/decisions/{decision_id}/review",
    response_model=ReviewView,
    responses=_ERRORS,
    summary="Record a human reviewer's outcome for a decision (admin)",
    openapi_extra=json_body_openapi(ReviewRequest),
)
async def review_decision(decision_id: DecisionId, request: Request) -> ReviewView:
    log = _log(request)
    principal = _principal(request, "admin")
    body = await read_json_body(request, ReviewRequest)
    original = await _original(log, decision_id, principal)
    review = await log.store.add_review(
        decision_id,
        original["tenant"],
        principal.key_id,
        body.outcome,
        body.verdict.value if body.verdict is not None else None,
        body.note,
    )
    if body.outcome == "overturned":
        DECISIONS_OVERTURNED.labels(original["policy_id"], "review").inc()
    return ReviewView.model_validate(review)
