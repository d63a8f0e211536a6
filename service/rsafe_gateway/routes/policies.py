"""GET /v1/policies and GET /v1/policies/{policy_id}."""

from __future__ import annotations

from fastapi import APIRouter, Request
from rsafe_core.policy import Policy

from ..errors import NotFound
from ..gateway_state import gateway_state
from ..protocol import CategoryInfo, ErrorResponse, PolicyDetail, PolicyInfo, PolicyList

router = APIRouter(tags=["policies"])


def _info(policy: Policy) -> dict[str, object]:
    return {
        "id": policy.id,
        "version": policy.version,
        "sha256": policy.sha256,
        "title": policy.title,
        "description": policy.description,
        "categories": [
            CategoryInfo(id=c.id, name=c.name, description=c.description) for c in policy.categories
        ],
    }


@router.get("/v1/policies", response_model=PolicyList, summary="List the named policies")
async def list_policies(request: Request) -> PolicyList:
    service = gateway_state(request.app).service
    store = service.policies
    # A family with a fixed taxonomy (qwen3guard) serves its own policy only: list just that one.
    fixed = service.guard_format.fixed_policy_id
    served = [policy for policy in store.all() if fixed is None or policy.id == fixed]
    return PolicyList(
        default_policy_id=store.default_id,
        policies=[PolicyInfo.model_validate(_info(policy)) for policy in served],
    )


@router.get(
    "/v1/policies/{policy_id}",
    response_model=PolicyDetail,
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
    summary="One named policy, with the text that goes into the prompt",
)
async def get_policy(policy_id: str, request: Request) -> PolicyDetail:
    policy = gateway_state(request.app).service.policies.get(policy_id)
    if policy is None:
        raise NotFound(f"unknown policy {policy_id!r}", param="policy_id")
    return PolicyDetail.model_validate({**_info(policy), "text": policy.body})
