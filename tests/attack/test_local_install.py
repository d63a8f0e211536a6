"""A gateway on loopback with auth off, attacked from a web page the user visits, against a REAL
gateway process (uvicorn) with a model stand-in.

- Cross-site requests: a page can make the browser POST `text/plain`, form or type-less bodies
  anywhere without a CORS preflight; the JSON endpoints refuse them (415), so only a caller that
  may send `application/json` (same origin, or one the browser asked about first) is served.
- DNS rebinding: a page re-points its own name at 127.0.0.1; its requests carry that name in
  `Host` and get 421. Loopback names, RSAFE_HOST and RSAFE_ALLOWED_HOSTS are served; `*` serves any.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import GatewayProcess, start_gateway, stop_process
from standins import VALID_COMPLETION, standin_server

from .helpers import assert_error
from .raw_http import connect, head, read_response

JSON_ROUTES = {
    "/v1/moderate": b'{"input": "hello"}',
    "/v1/moderate/batch": b'{"items": [{"input": "hello"}]}',
    "/v1/moderations": b'{"input": "hello"}',
}


@pytest.fixture(scope="module")
def gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, GatewayProcess]]:
    folder: Path = tmp_path_factory.mktemp("local")
    started: dict[str, GatewayProcess] = {}
    with standin_server(body=VALID_COMPLETION) as model_url:
        base = {"RSAFE_MODEL_SERVER_URL": model_url, "RSAFE_REDIS_URL": ""}
        try:
            for name, allowed in (
                ("default", ""),
                ("named", "gateway,rsafe.internal"),
                ("any", "*"),
            ):
                started[name] = start_gateway(
                    {**base, "RSAFE_ALLOWED_HOSTS": allowed}, folder / f"{name}.log"
                )
            yield started
        finally:
            for gateway in started.values():
                stop_process(gateway.process)


@pytest.mark.parametrize("path", sorted(JSON_ROUTES))
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "",  # a fetch() with a Blob body of no type sends none
    ],
)
def test_a_body_not_declared_json_is_415(
    gateways: dict[str, GatewayProcess], path: str, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(
        f"{gateways['default'].url}{path}", content=JSON_ROUTES[path], headers=headers, timeout=10
    )
    assert response.status_code == 415, response.text
    assert_error(response.json(), "invalid_request")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_json_is_served(gateways: dict[str, GatewayProcess], content_type: str) -> None:
    for path, body in JSON_ROUTES.items():
        response = httpx.post(
            f"{gateways['default'].url}{path}",
            content=body,
            headers={"Content-Type": content_type},
            timeout=10,
        )
        assert response.status_code == 200, (path, response.text)


def status_for_host(gateway: GatewayProcess, host: str, path: str = "/v1/policies") -> int:
    port = int(gateway.url.rsplit(":", 1)[1])
    with connect(port) as sock:
        sock.sendall(head("GET", path, {"Connection": "close"}, host=host))
        answer = read_response(sock, timeout=10)
    assert answer is not None
    if answer.status >= 400:
        assert_error(answer.json(), "invalid_request")
    return answer.status


REBOUND = ["attacker.example", "attacker.example:8080", "127.0.0.1.attacker.example", "gateway"]
LOOPBACK = [
    "127.0.0.1",
    "127.0.0.1:8080",
    "localhost",
    "LOCALHOST:8080",
    "[::1]:8080",
    "localhost.",
]


@pytest.mark.parametrize("host", REBOUND)
def test_a_rebound_host_name_is_421(gateways: dict[str, GatewayProcess], host: str) -> None:
    assert status_for_host(gateways["default"], host) == 421
    assert status_for_host(gateways["default"], host, "/v1/moderate") == 421


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_names_are_served(gateways: dict[str, GatewayProcess], host: str) -> None:
    assert status_for_host(gateways["default"], host) == 200


def test_allowed_hosts_adds_names_and_star_allows_any(gateways: dict[str, GatewayProcess]) -> None:
    assert status_for_host(gateways["named"], "gateway:8080") == 200
    assert status_for_host(gateways["named"], "rsafe.internal") == 200
    assert status_for_host(gateways["named"], "localhost") == 200
    assert status_for_host(gateways["named"], "attacker.example") == 421
    for host in REBOUND:
        assert status_for_host(gateways["any"], host) == 200
