"""Stop work whose answer nobody will read: the fan-out routes give up when their client leaves.

A batch or /v1/moderations request can hold dozens of model calls; if the client disconnects,
they are cancelled (a model call shared with other requests through single-flight goes on for
them). Only these routes pay for the watch (one extra task per request): a single moderation
holds one call, the hot path stays as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

from ..errors import ClientClosedRequest

T = TypeVar("T")


async def _disconnected(receive: Receive) -> None:
    # The body has been read: what comes next is the disconnect (or the end of the response).
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> T:
    """`work`'s result; if the client goes away first, `work` is cancelled and
    ClientClosedRequest (499, logged as a 4xx, never sent) raised."""
    working = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((working, watching), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:  # this request is cancelled itself (shutdown)
        working.cancel()
        watching.cancel()
        raise
    if working.done():
        watching.cancel()
        return working.result()  # or raises what the work raised
    working.cancel()
    await asyncio.wait((working,))  # let its model calls unwind
    raise ClientClosedRequest("the client closed the connection before the answer was ready")
