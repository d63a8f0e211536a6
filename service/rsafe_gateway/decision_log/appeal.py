"""Appeals: re-judge a logged decision with the appeal settings, recorded linked to the original.

The appeal settings give the model a larger budget (RSAFE_APPEAL_MAX_TOKENS,
RSAFE_APPEAL_REASONING_MAX_CHARS) and optionally another served model (RSAFE_APPEAL_MODEL_NAME);
the cache is bypassed. The content must be the original's: re-sent (its SHA-256 must match the
stored one) or, with content retention on, taken from the log.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from rsafe_core.policy import inline_policy
from rsafe_core.turns import Target

from ..backend import BackendConfig, ModelBackend
from ..cache import DecisionCache
from ..errors import InvalidRequest
from ..metrics import DECISIONS_OVERTURNED
from ..policy_store import PolicyStore
from ..protocol import Message, ModerationRequest
from ..result import ModerationResult
from ..service import ModerationService
from ..settings import Settings
from ..tenants import ANONYMOUS, Principal
from .record import DecisionContext, DecisionRecord, build_record, content_sha256
from .writer import DecisionWriter

APPEAL_ROUTE = "/v1/decisions/{decision_id}/appeal"


def appeal_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "max_tokens": settings.appeal_max_tokens,
            "reasoning_max_chars": settings.appeal_reasoning_max_chars,
            "model_name": settings.appeal_model_name or settings.model_name,
        }
    )


def build_appeal_service(
    settings: Settings, backend: ModelBackend, cache: DecisionCache, policies: PolicyStore
) -> tuple[ModerationService, ModelBackend | None]:
    """The service that judges appeals, and its own backend when it uses another model (to close).

    It logs nothing itself: `appeal()` writes the appeal's row, linked to the original.
    """
    own = appeal_settings(settings)
    appeal_backend: ModelBackend | None = None
    if own.model_name != settings.model_name:
        appeal_backend = ModelBackend(
            BackendConfig(
                base_url=settings.model_server_url,
                model=own.model_name,
                api_key=settings.model_server_api_key,
                connect_timeout=settings.connect_timeout_seconds,
                read_timeout=settings.read_timeout_seconds,
                connect_retries=settings.connect_retries,
                max_connections=settings.max_connections,
            )
        )
    service = ModerationService(own, appeal_backend or backend, cache, policies)
    return service, appeal_backend


def _appeal_request(
    original: dict[str, Any], content: Any, policy: str | None
) -> ModerationRequest:
    if original["policy_id"] == "inline":
        if policy is None:
            raise InvalidRequest(
                "the decision used the caller's own policy: send it", param="policy"
            )
        if inline_policy(policy).sha256 != original["policy_sha256"]:
            raise InvalidRequest("'policy' is not the decision's policy", param="policy")
        return ModerationRequest.model_validate(
            {"input": content, "target": original["target"], "policy": policy, "cache": False}
        )
    if policy is not None:
        raise InvalidRequest("the decision used a named policy: send no 'policy'", param="policy")
    return ModerationRequest.model_validate(
        {
            "input": content,
            "target": original["target"],
            "policy_id": original["policy_id"],
            "cache": False,
        }
    )


def _content(original: dict[str, Any], given: str | list[Message] | None) -> Any:
    if given is None:
        if original["content"] is None:
            raise InvalidRequest(
                "the gateway keeps only the content's SHA-256: send the original 'input'",
                param="input",
            )
        return original["content"]
    if content_sha256(given) != original["content_sha256"]:
        raise InvalidRequest("'input' is not the decision's content", param="input")
    return given if isinstance(given, str) else [m.model_dump(mode="json") for m in given]


async def appeal(
    service: ModerationService,
    writer: DecisionWriter,
    original: dict[str, Any],
    given_input: str | list[Message] | None,
    given_policy: str | None,
    principal: Principal,
    request_id: str,
) -> tuple[DecisionRecord, bool]:
    """Re-judge `original`; its row is logged (waited for in required mode). The record and
    whether the appeal overturned the original's `flagged`."""
    request = _appeal_request(original, _content(original, given_input), given_policy)
    # The appeal belongs to the original's tenant (its owner reads it), made by this key.
    appellant = dataclasses.replace(ANONYMOUS, key_id=principal.key_id, tenant=original["tenant"])
    context = DecisionContext(appellant, APPEAL_ROUTE, appeal_of=original["id"])
    result: ModerationResult = await service.moderate(request, request_id, context)
    record = build_record(
        request,
        result,
        Target(original["target"]),
        result.reasoning,
        None,
        context,
        writer.stores_content,
        service.guard_format,  # the appeal's own format (it may judge with another family)
    )
    written = writer.enqueue(record)
    if written is not None:
        await written
    overturned = result.flagged != original["flagged"]
    if overturned:
        DECISIONS_OVERTURNED.labels(original["policy_id"], "appeal").inc()
    return record, overturned
