"""Run the gateway under uvicorn with the playground router included, configured from RSAFE_* env.

Once app.py includes `routes.playground.router` itself this adds nothing (the route is found and
not added twice); until then it lets the browser tests drive a real uvicorn process.
"""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from rsafe_gateway.app import create_app
from rsafe_gateway.routes import playground
from rsafe_gateway.settings import Settings


def with_playground(app: FastAPI) -> FastAPI:
    if not any(getattr(route, "path", None) == "/playground" for route in app.routes):
        app.include_router(playground.router)
    return app


def main() -> None:
    settings = Settings(_env_file=None)
    app = with_playground(create_app(settings))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
