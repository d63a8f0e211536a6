"""`python -m rsafe_gateway`: serve the gateway with uvicorn (uvloop + httptools).

Shutdown on SIGTERM: readiness turns false at once (`lifecycle.DRAINING`), requests are still
accepted for RSAFE_SHUTDOWN_DELAY_SECONDS so load balancers can take the replica out, then uvicorn
stops accepting and lets in-flight requests finish for up to RSAFE_SHUTDOWN_GRACE_SECONDS, and
the lifespan closes the connection pools. A second SIGTERM/SIGINT stops at once.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn
from rsafe_core.policy import PolicyFileError

from .lifecycle import DRAINING
from .settings import Settings, get_settings

APP = "rsafe_gateway.app:create_app_from_env"
# httptools, with bounded request heads (by name: each worker process imports it).
HTTP_PROTOCOL = "rsafe_gateway.server_protocol:BoundedHttpToolsProtocol"


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain_delay: float) -> None:
        super().__init__(config)
        self._drain_delay = drain_delay

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_delay > 0 and not DRAINING.is_set():
            DRAINING.set()
            timer = threading.Timer(self._drain_delay, super().handle_exit, (sig, frame))
            timer.daemon = True
            timer.start()
            return
        DRAINING.set()
        super().handle_exit(sig, frame)


def _server_options(settings: Settings) -> dict[str, Any]:
    trusted_proxies = settings.trusted_proxies.strip()
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        "workers": settings.workers,
        "loop": "uvloop",
        "http": HTTP_PROTOCOL,
        # X-Forwarded-For/-Proto only from the configured proxies (uvicorn's default believes
        # any loopback peer, which would let a local caller pick its own rate-limit bucket).
        "proxy_headers": bool(trusted_proxies),
        "forwarded_allow_ips": trusted_proxies or None,
        "log_level": settings.log_level,
        "access_log": False,  # the gateway writes its own JSON line per request
        "timeout_graceful_shutdown": int(settings.shutdown_grace_seconds),
    }


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    try:
        if settings.workers > 1:
            # uvicorn's supervisor forwards signals to the workers; each drains on its own.
            uvicorn.run(APP, **_server_options(settings))
        else:
            config = uvicorn.Config(APP, **_server_options(settings))
            DrainingServer(config, settings.shutdown_delay_seconds).run()
    except PolicyFileError as exc:
        sys.stderr.write(f"rsafe-gateway: cannot start: {exc}\n")
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
