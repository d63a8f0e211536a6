"""/openapi.json documents the moderation routes (served as plain Starlette routes) in full."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

BODIES = {
    "/v1/moderate": ("ModerationRequest", "ModerationResponse"),
    "/v1/moderate/batch": ("BatchRequest", "BatchResponse"),
    "/v1/moderations": ("OpenAIModerationRequest", "OpenAIModerationResponse"),
}


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(model_server_url="http://127.0.0.1:9")


def test_request_and_response_bodies_are_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for path, (request_model, response_model) in BODIES.items():
        operation = schema["paths"][path]["post"]
        request_body = operation["requestBody"]
        assert request_body["required"] is True
        ref = request_body["content"]["application/json"]["schema"]["$ref"]
        assert ref == f"#/components/schemas/{request_model}"
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer["$ref"] == f"#/components/schemas/{response_model}"
        assert {"400", "413", "503"} <= set(operation["responses"])
        assert "422" not in operation["responses"]
        assert request_model in components
    # Nested models are resolvable too (Message inside ModerationRequest).
    message_ref = components["ModerationRequest"]["properties"]["input"]["anyOf"][1]["items"]
    assert message_ref["$ref"].removeprefix("#/components/schemas/") in components


def test_only_post_is_served_and_errors_keep_the_contract_shape(client: TestClient) -> None:
    for path in BODIES:
        response = client.get(path)
        assert response.status_code == 405
        assert set(response.json()["error"]) == {"type", "message", "param"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"", None),
        (b"not json", None),
        (b'{"input": 3}', "input"),
        (b'{"input": [{"role": "robot", "content": "x"}]}', "input[0].role"),
        (b'{"input": "x", "surprise": 1}', "surprise"),
    ],
)
def test_bodies_are_validated_from_bytes(
    client: TestClient, body: bytes, param: str | None
) -> None:
    response = client.post(
        "/v1/moderate", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["param"] == param
