"""Answer only requests addressed to this gateway by name (RSAFE_ALLOWED_HOSTS), as a pure ASGI
middleware in front of everything else.

Why: a web page can make a browser send requests to a gateway on the user's machine through DNS
rebinding (its own name, re-pointed at 127.0.0.1). Those requests carry the page's host name in
`Host`, so refusing unknown names (421) shuts that door. The loopback names and RSAFE_HOST are
always allowed; `*` allows any name, for a gateway behind a load balancer or ingress that routes
by host itself. A request without `Host` (HTTP/1.0) cannot come from a browser and is served.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import MisdirectedRequest
from .responses import error_response
from .settings import Settings

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def allowed_host_names(settings: Settings) -> frozenset[bytes] | None:
    """The names the gateway answers to, lowercase and without port; None: any name."""
    listed = [item.strip() for item in settings.allowed_hosts.split(",") if item.strip()]
    if "*" in listed:
        return None
    names = {*LOOPBACK_NAMES, settings.host, *listed}
    return frozenset(host_name(name.encode("latin-1")) for name in names)


def host_name(value: bytes) -> bytes:
    """`Host` without its port, lowercase, brackets of an IPv6 address and a final dot removed."""
    value = value.strip().lower()
    if value.startswith(b"["):
        end = value.find(b"]")
        return value[1:end] if end > 0 else value
    if value.count(b":") == 1:  # name:port (a bare IPv6 address has more colons)
        name, _, port = value.partition(b":")
        if port.isdigit() or not port:
            value = name
    return value[:-1] if value.endswith(b".") else value


class HostCheckMiddleware:
    def __init__(self, app: ASGIApp, allowed: frozenset[bytes]) -> None:
        self.app = app
        self.allowed = allowed
        # `Host` exactly as sent -> allowed?: a dict lookup per request instead of parsing it.
        self._seen: dict[bytes, bool] = {}

    def _allows(self, value: bytes) -> bool:
        allowed = self._seen.get(value)
        if allowed is None:
            allowed = host_name(value) in self.allowed
            if len(self._seen) < 1024:  # bounded: callers choose what they send
                self._seen[value] = allowed
        return allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"host":
                    if not self._allows(value):
                        refused = MisdirectedRequest(
                            "this host name is not served here (RSAFE_ALLOWED_HOSTS)"
                        )
                        await error_response(refused)(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)
