"""Every error of the contract: status, error.type and error.param."""

from collections.abc import Callable

import orjson
import pytest
from fastapi.testclient import TestClient

from conftest import free_port
from standins import standin_server

UNREACHABLE = f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(model_server_url=UNREACHABLE, max_text_chars=1000, max_policy_chars=500)


def assert_error(response: object, status: int, error_type: str, param: str | None) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert body["error"]["type"] == error_type
    assert body["error"]["param"] == param
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({}, "input"),
        ({"input": 42}, "input"),
        ({"input": ""}, "input"),
        ({"input": "x" * 1001}, "input"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role"),
        ({"input": [{"role": "user"}]}, "input[0].content"),
        ({"input": [{"role": "user", "content": ""}]}, "input[0].content"),
        ({"input": "hi", "target": "everything"}, "target"),
        ({"input": "hi", "target": "response"}, "target"),
        ({"input": "hi", "policy": "X1 - a", "policy_id": "rsafe-default"}, "policy"),
        ({"input": "hi", "policy": "   "}, "policy"),
        ({"input": "hi", "policy": "p" * 501}, "policy"),
        ({"input": "hi", "policy_id": "no-such-policy"}, "policy_id"),
        ({"input": "hi", "reasoning": "maybe"}, "reasoning"),
        ({"input": "hi", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_request(client: TestClient, payload: dict[str, object], param: str) -> None:
    assert_error(client.post("/v1/moderate", json=payload), 400, "invalid_request", param)


# Wrong JSON types are refused, never coerced (pydantic's lax mode took "no" as false).
WRONG_TYPES: list[tuple[dict[str, object], str]] = [
    ({"input": "hi", "cache": "no"}, "cache"),
    ({"input": "hi", "cache": 0}, "cache"),
    ({"input": "hi", "reasoning": "false"}, "reasoning"),
    ({"input": "hi", "reasoning": 1}, "reasoning"),
    ({"input": 123}, "input"),
    ({"input": True}, "input"),
    ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
    ({"input": "hi", "policy": 7}, "policy"),
    ({"input": "hi", "policy_id": 7}, "policy_id"),
    ({"input": "hi", "target": 1}, "target"),
]


@pytest.mark.parametrize(("payload", "param"), WRONG_TYPES)
def test_wrong_json_types_are_refused(
    client: TestClient, payload: dict[str, object], param: str
) -> None:
    response = client.post("/v1/moderate", json=payload)
    assert_error(response, 400, "invalid_request", param)
    assert param.split(".")[0].split("[")[0] in response.json()["error"]["message"]


@pytest.mark.parametrize(("payload", "param"), WRONG_TYPES)
def test_wrong_json_types_are_refused_per_batch_item(
    client: TestClient, payload: dict[str, object], param: str
) -> None:
    response = client.post("/v1/moderate/batch", json={"items": [payload]})
    assert response.status_code == 200, response.text
    (item,) = response.json()["results"]
    assert item["error"]["type"] == "invalid_request"
    assert item["error"]["param"] == f"items[0].{param}"


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": 123}, "input"),
        ({"input": ["ok", 5]}, "input[1]"),
        ({"input": True}, "input"),
        ({"input": "hi", "model": 4}, "model"),
    ],
)
def test_wrong_json_types_are_refused_by_openai_moderations(
    client: TestClient, payload: dict[str, object], param: str
) -> None:
    assert_error(client.post("/v1/moderations", json=payload), 400, "invalid_request", param)


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/v1/moderate", content=b'{"input": ', headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_request", None)


def test_unknown_policy_path_is_404(client: TestClient) -> None:
    assert_error(client.get("/v1/policies/nope"), 404, "invalid_request", "policy_id")


def test_unknown_route_is_in_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v1/nowhere"), 404, "invalid_request", None)


def test_model_server_refusing_connections_is_503(client: TestClient) -> None:
    response = client.post("/v1/moderate", json={"input": "hello"})
    assert_error(response, 503, "backend_unavailable", None)
    assert response.headers["x-request-id"].startswith("mod-")


def test_model_server_5xx_is_502(make_client: Callable[..., TestClient]) -> None:
    with standin_server(status=500, body=b'{"error": "boom"}') as url:
        client = make_client(model_server_url=url)
        assert_error(client.post("/v1/moderate", json={"input": "hi"}), 502, "backend_error", None)


def test_model_server_garbage_is_502(make_client: Callable[..., TestClient]) -> None:
    with standin_server(status=200, body=b"<html>not json</html>") as url:
        client = make_client(model_server_url=url)
        assert_error(client.post("/v1/moderate", json={"input": "hi"}), 502, "backend_error", None)


def test_model_server_hanging_is_504(make_client: Callable[..., TestClient]) -> None:
    with standin_server(delay=3.0) as url:
        client = make_client(model_server_url=url, read_timeout_seconds=0.5)
        response = client.post("/v1/moderate", json={"input": "hi"})
        assert_error(response, 504, "backend_timeout", None)


def test_unreadable_completion_is_undetermined_and_flagged_when_closed(
    make_client: Callable[..., TestClient],
) -> None:
    body = orjson.dumps(
        {
            "choices": [{"message": {"content": "I refuse to answer"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 4},
        }
    )
    with standin_server(body=body) as url:
        closed = make_client(model_server_url=url).post("/v1/moderate", json={"input": "hi"})
        opened = make_client(model_server_url=url, fail_mode="open").post(
            "/v1/moderate", json={"input": "hi"}
        )
    assert closed.status_code == 200
    assert closed.json()["verdict"] == "undetermined"
    assert closed.json()["flagged"] is True
    assert closed.json()["fail_mode"] == "closed"
    assert opened.json()["flagged"] is False
    assert opened.json()["fail_mode"] == "open"


def test_callers_request_id_is_kept(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "caller-123"})
    assert response.headers["x-request-id"] == "caller-123"
    response = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"].startswith("mod-")


def test_request_id_is_forwarded_to_the_model_server(
    make_client: Callable[..., TestClient],
) -> None:
    from standins import recording_server

    with recording_server() as (url, seen):
        client = make_client(model_server_url=url)
        client.post("/v1/moderate", json={"input": "hi"}, headers={"X-Request-ID": "trace-42"})
    assert [headers.get("x-request-id") for headers in seen] == ["trace-42"]
