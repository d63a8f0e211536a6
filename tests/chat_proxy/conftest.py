"""Fixtures of the chat proxy tests: the scripted stand-ins, and gateways as real uvicorn servers
on a thread of the test process (so a test can read the gateway's Prometheus metrics directly)."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Iterator

import pytest
import uvicorn
from prometheus_client import REGISTRY

from conftest import free_port, tiny_settings, wait_until
from rsafe_gateway.app import create_app

from .standins import Standins

GatewayFactory = Callable[..., str]


@pytest.fixture
def standins() -> Iterator[Standins]:
    with Standins().running() as servers:
        yield servers


@pytest.fixture
def make_gateway() -> Iterator[GatewayFactory]:
    """Start a gateway for the given settings; returns its base URL. All are stopped after."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def factory(**overrides: object) -> str:
        values: dict[str, object] = {
            "proxy_window_chars": 40,
            "proxy_lookback_chars": 80,
            "access_log_flush_seconds": 0.0,
            "upstream_read_timeout_seconds": 2.0,
            "policy_reload_interval_seconds": 0,
        }
        values.update(overrides)
        port = free_port()
        config = uvicorn.Config(
            create_app(tiny_settings(**values)), host="127.0.0.1", port=port,
            log_level="warning", access_log=False,
        )  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))

        def started() -> bool:
            if not thread.is_alive():
                raise RuntimeError("the gateway did not start (see the log above)")
            return server.started

        wait_until(started, 20, "gateway", interval=0.02)
        return f"http://127.0.0.1:{port}"

    yield factory
    for server, thread in running:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "a gateway did not stop"


def metric(name: str, labels: dict[str, str] | None = None) -> float:
    """The current value of one of the gateway's Prometheus samples (0 when never set)."""
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """What the gateway's log handler writes (access lines included), from now on."""
    handler = logging.getLogger("rsafe_gateway").handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
