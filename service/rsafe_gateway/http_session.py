"""The pooled aiohttp session the gateway's clients share the set-up of: the model server
(`backend.py`) and the chat proxy's upstream LLM (`chat_proxy/upstream.py`)."""

from __future__ import annotations

import aiohttp


def pooled_session(
    *,
    api_key: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
) -> aiohttp.ClientSession:
    """A JSON client session; create it inside a running event loop."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return aiohttp.ClientSession(
        # Idle connections are dropped before a uvicorn server drops them (vLLM's keep-alive is
        # 5 s), so a request is rarely sent on a connection the server is closing.
        connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=4),
        # sock_read bounds every wait for bytes: the first one and each gap in a stream.
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        ),
        headers=headers,
    )
