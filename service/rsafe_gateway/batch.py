"""Many moderation requests in one call: each item validated and judged on its own, concurrently.

The model server batches the concurrent calls itself (continuous batching), so the gateway only
has to fan out. Results keep the items' order; a bad item gets an error object in its place.
Every item is validated and looked up in the cache first, so the model calls the batch needs are
known, and paid for (`pay`, the rate limit), before any is made.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from .decision_log.record import INTERNAL_CONTEXT, DecisionContext
from .errors import GatewayError, InvalidRequest
from .protocol import ModerationRequest
from .rate_limit import Pay
from .responses import error_body
from .result import ModerationResult
from .service import Job, ModerationService
from .validation import invalid_request_from


def _in_batch(exc: GatewayError, index: int) -> dict[str, Any]:
    # The field named as it is in the batch, on a copy: `exc` itself may be shared.
    item = exc.own_copy()
    item.param = f"items[{index}].{exc.param}" if exc.param is not None else None
    return error_body(item)


async def _prepare(
    service: ModerationService,
    raw: dict[str, Any],
    item_id: str,
    index: int,
    context: DecisionContext,
) -> Job | dict[str, Any]:
    try:
        request = ModerationRequest.model_validate(raw)
    except ValidationError as exc:
        return error_body(invalid_request_from(exc.errors(), prefix=f"items[{index}]"))
    try:
        return await service.prepare(request, item_id, context)
    except GatewayError as exc:
        return _in_batch(exc, index)


async def moderate_batch(
    service: ModerationService,
    items: list[dict[str, Any]],
    batch_id: str,
    context: DecisionContext = INTERNAL_CONTEXT,
    *,
    pay: Pay | None = None,
) -> list[ModerationResult | dict[str, Any]]:
    if not items:
        raise InvalidRequest("'items' must not be empty", param="items")
    max_items = service.max_batch_items
    if len(items) > max_items:
        raise InvalidRequest(f"'items' has more than {max_items} entries", param="items")

    prepared = await asyncio.gather(
        *(
            _prepare(service, raw, f"{batch_id}-{index}", index, context)
            for index, raw in enumerate(items)
        )
    )
    jobs = [job for job in prepared if isinstance(job, Job)]
    await asyncio.gather(*(service.look_up(job) for job in jobs if job.request.cache))
    if pay is not None:
        await pay(service.model_calls(jobs))

    async def one(index: int, job: Job | dict[str, Any]) -> ModerationResult | dict[str, Any]:
        if not isinstance(job, Job):
            return job
        try:
            return await service.finish(job)
        except GatewayError as exc:
            return _in_batch(exc, index)

    return list(await asyncio.gather(*(one(i, job) for i, job in enumerate(prepared))))
