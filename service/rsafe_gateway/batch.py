"""Many moderation requests in one call: each item validated and judged on its own, concurrently.

The model server batches the concurrent calls itself (continuous batching), so the gateway only
has to fan out. Results keep the items' order; a bad item gets an error object in its place.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import ValidationError

from .decision_log.record import INTERNAL_CONTEXT, DecisionContext
from .errors import GatewayError, InvalidRequest
from .protocol import ModerationRequest
from .result import ModerationResult
from .service import ModerationService
from .validation import invalid_request_from


def _error_item(exc: GatewayError) -> dict[str, Any]:
    return {"error": {"type": exc.error_type, "message": exc.message, "param": exc.param}}


async def moderate_batch(
    service: ModerationService,
    items: list[dict[str, Any]],
    batch_id: str,
    max_items: int,
    context: DecisionContext = INTERNAL_CONTEXT,
) -> list[ModerationResult | dict[str, Any]]:
    if not items:
        raise InvalidRequest("'items' must not be empty", param="items")
    if len(items) > max_items:
        raise InvalidRequest(f"'items' has more than {max_items} entries", param="items")

    async def one(index: int, raw: dict[str, Any]) -> ModerationResult | dict[str, Any]:
        try:
            request = ModerationRequest.model_validate(raw)
        except ValidationError as exc:
            return _error_item(invalid_request_from(exc.errors(), prefix=f"items[{index}]"))
        try:
            result = await service.moderate(request, f"{batch_id}-{index}", context)
        except GatewayError as exc:
            if exc.param is not None:  # name the field as it is in the batch
                exc.param = f"items[{index}].{exc.param}"
            return _error_item(exc)
        return result

    return list(await asyncio.gather(*(one(i, raw) for i, raw in enumerate(items))))
