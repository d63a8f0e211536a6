"""Contract gaps the attack suite found (fixed; kept as regression tests)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from conftest import free_port
from rsafe_gateway.settings import Settings

from .helpers import error_shape_problem


def test_readyz_503_is_exactly_the_error_shape(make_client: Callable[..., TestClient]) -> None:
    client = make_client(model_server_url=f"http://127.0.0.1:{free_port()}")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert error_shape_problem(response.json()) is None, response.json()


def test_empty_redis_url_disables_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RSAFE_REDIS_URL", "")
    assert not Settings(_env_file=None).redis_url
