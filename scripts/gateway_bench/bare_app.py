#!/usr/bin/env python
"""The cache-hit baseline: a bare FastAPI endpoint that parses the JSON body and returns a recorded
gateway answer, served with the gateway's uvicorn settings. Run as a script it serves the app:
`bare_app.py PORT BODY_FILE` (what `start_bare` runs)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response  # module level: the bare app's annotations resolve

if TYPE_CHECKING:
    from devstack import Stack


def bare_app(answer: bytes) -> FastAPI:
    """The baseline: a FastAPI endpoint that parses the JSON body and returns `answer`."""
    app = FastAPI()

    async def moderate(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(answer, media_type="application/json")

    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.add_api_route("/v1/moderate", moderate, methods=["POST"])
    app.add_api_route("/healthz", healthz, methods=["GET"])
    return app


def serve_bare(port: int, body_file: Path) -> None:
    """`bare_app` under the gateway's uvicorn settings (uvloop, httptools, 1 worker, no log)."""
    uvicorn.run(
        bare_app(body_file.read_bytes()),
        host="127.0.0.1",
        port=port,
        workers=1,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


def start_bare(stack: Stack, body: bytes) -> str:
    """The bare app as its own process of `stack` (named `bare-fastapi`), answering `body`."""
    from devstack import free_port, wait_http  # not in the served process: it imports the recipe

    port = free_port()
    body_file = stack.log_dir / "bare-body.json"
    body_file.write_bytes(body)
    process = stack.spawn(
        "bare-fastapi", [sys.executable, str(Path(__file__).resolve()), str(port), str(body_file)]
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", process, 30, "bare FastAPI app")
    return url


if __name__ == "__main__":  # what `start_bare` runs: PORT BODY_FILE
    serve_bare(int(sys.argv[1]), Path(sys.argv[2]))
