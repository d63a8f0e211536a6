"""POST /v1/moderations in the OpenAI Moderation API shape, on top of the moderation service.

Categories: judged with the `openai-moderation` policy (RSAFE_OPENAI_POLICY_ID), whose category
names ARE the OpenAI names; with another policy, RSafe's default ids (and Qwen3Guard's, with that
family) are mapped by the tables below.
Scores: a reasoning guard gives a verdict, not a probability. `category_scores` is therefore 1.0 for
each category the model named as violated and 0.0 for the others; it is not calibrated.
An undetermined verdict is `flagged` per the fail mode, with no category set.
"""

from __future__ import annotations

import asyncio

from rsafe_core.policy import Policy

from .decision_log.record import INTERNAL_CONTEXT, DecisionContext
from .errors import InvalidRequest
from .protocol import (
    ModerationRequest,
    OpenAIModerationRequest,
    OpenAIModerationResponse,
    OpenAIModerationResult,
)
from .rate_limit import Pay
from .result import ModerationResult
from .service import ModerationService

OPENAI_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
    "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions", "sexual",
    "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip

# RSafe's default categories (U1-U18) in OpenAI's names, for when the default policy is used.
RSAFE_DEFAULT_TO_OPENAI = {
    "U1": ("violence",), "U2": ("illicit/violent",), "U3": ("illicit",), "U4": ("illicit",),
    "U5": ("sexual",), "U6": ("sexual/minors",), "U7": ("hate",), "U8": ("harassment",),
    "U9": ("self-harm",), "U15": ("violence",), "U17": ("harassment/threatening",),
}  # fmt: skip
# Qwen3Guard's fixed taxonomy (policy `qwen3guard`) where OpenAI has a counterpart; PII, Unethical
# Acts, Politically Sensitive Topics, Copyright Violation and Jailbreak have none.
QWEN3GUARD_TO_OPENAI = {
    "VIOLENT": ("violence",), "ILLEGAL": ("illicit",), "SEXUAL": ("sexual",),
    "SELF_HARM": ("self-harm",),
}  # fmt: skip
_TO_OPENAI = {**RSAFE_DEFAULT_TO_OPENAI, **QWEN3GUARD_TO_OPENAI}


def openai_names(policy: Policy, category_ids: list[str]) -> set[str]:
    by_id = {category.id: category.name for category in policy.categories}
    names: set[str] = set()
    for category_id in category_ids:
        if by_id.get(category_id) in OPENAI_CATEGORIES:
            names.add(by_id[category_id])
        else:
            names.update(_TO_OPENAI.get(category_id, ()))
    return names


def _result(answer: ModerationResult, policy: Policy) -> OpenAIModerationResult:
    named = openai_names(policy, answer.categories)
    return OpenAIModerationResult(
        flagged=answer.flagged,
        categories={name: name in named for name in OPENAI_CATEGORIES},
        category_scores={name: 1.0 if name in named else 0.0 for name in OPENAI_CATEGORIES},
        category_applied_input_types={name: ["text"] for name in OPENAI_CATEGORIES},
    )


async def moderate_openai(
    service: ModerationService,
    request: OpenAIModerationRequest,
    request_id: str,
    context: DecisionContext = INTERNAL_CONTEXT,
    *,
    pay: Pay | None = None,
) -> OpenAIModerationResponse:
    """One answer for all inputs, so the first input that fails fails the request: every input is
    validated before any model call, and the calls still running when one fails are cancelled."""
    texts = [request.input] if isinstance(request.input, str) else request.input
    if not texts:
        raise InvalidRequest("'input' must not be empty", param="input")
    max_items = service.max_batch_items
    if len(texts) > max_items:
        raise InvalidRequest(f"'input' has more than {max_items} entries", param="input")
    policy_id = service.openai_policy_id
    policy = service.policies.resolve(policy_id, None, 0)
    jobs = await asyncio.gather(
        *(
            service.prepare(
                ModerationRequest(input=text, policy_id=policy_id, reasoning=False),
                f"{request_id}-{index}",
                context,
            )
            for index, text in enumerate(texts)
        )
    )
    await asyncio.gather(*(service.look_up(job) for job in jobs))
    if pay is not None:
        await pay(service.model_calls(jobs))
    calls = [asyncio.ensure_future(service.finish(job)) for job in jobs]
    try:
        answers = await asyncio.gather(*calls)
    except BaseException:
        for call in calls:
            call.cancel()  # their answers would be thrown away
        raise
    return OpenAIModerationResponse(
        id=f"modr-{request_id}",
        model=service.model,
        results=[_result(answer, policy) for answer in answers],
    )
