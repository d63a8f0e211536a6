"""Per-request bookkeeping: request id, in-flight gauge, request counter and latency, one JSON
log line.

A pure ASGI middleware, the outermost of the gateway's own. A request that ends without an answer
because its client went away is logged and counted with status 499 (a client fault, not a 5xx).
It opens the request's context (`request_context.py`), in which admission puts the key id and the
routes their own fields (verdict, cached, policy id); the moderated text is never logged unless
`RSAFE_LOG_CONTENT` is set.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging_setup import AccessLineWriter
from .metrics import IN_FLIGHT, REQUEST_DURATION, REQUESTS
from .request_context import open_request_context
from .request_id import request_id_for

# Probes and scrapes would drown the log; they are still counted.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, BaseRoute) and hasattr(route, "path"):
        return str(route.path)
    return "unmatched"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, writer: AccessLineWriter) -> None:
        self.app = app
        self._writer = writer
        # Labelled children looked up once per (route, status class), not per request.
        self._counters: dict[tuple[str, int], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def _observe(self, route: str, status: int, elapsed: float) -> None:
        status_class = status // 100
        counter = self._counters.get((route, status_class))
        if counter is None:
            counter = self._counters[(route, status_class)] = REQUESTS.labels(
                route, f"{status_class}xx"
            )
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._histograms[route] = REQUEST_DURATION.labels(route)
        histogram.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # no answer sent (yet)
        request_id = request_id_for(scope["headers"])
        context = open_request_context(scope, request_id)
        id_header = (b"x-request-id", request_id.encode("latin-1"))
        IN_FLIGHT.inc()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except BaseException:
            status = status or 500  # the server error handler answers it
            raise
        finally:
            # Ended without an answer: the client went away (mid-body, say); nginx's 499, a 4xx.
            status = status or 499
            IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self._observe(route, status, elapsed)
            if route not in _QUIET_ROUTES:
                fields = {
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(elapsed * 1000, 3),
                    "key_id": context.key_id,
                    **context.log,
                }
                self._writer.write("request", fields)
