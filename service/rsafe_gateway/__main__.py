"""`python -m rsafe_gateway`: serve the gateway with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import logging

import uvicorn

from .settings import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
    uvicorn.run(
        "rsafe_gateway.app:create_app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
