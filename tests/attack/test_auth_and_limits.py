"""API keys and rate limits, against REAL gateway processes (real vLLM, real Redis).

- Auth on: no key / wrong key / malformed header -> 401 `unauthorized` with WWW-Authenticate;
  the right key -> 200; probes open; /metrics open unless RSAFE_METRICS_AUTH; path tricks do not
  get around the check; neither the key nor its hash ever reaches the log (debug level).
- Rate limit 1/s, burst 5, two gateway processes sharing one Redis (same key prefix): the 6th
  request within a second across BOTH gets 429 `rate_limited` with Retry-After >= 1. Without
  Redis each process limits on its own.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import (
    GatewayProcess,
    RedisServer,
    VllmServer,
    free_port,
    start_gateway,
    stop_process,
    wait_until,
)

from .helpers import error_shape_problem

pytestmark = pytest.mark.e2e

KEY = f"rsk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
WRONG_KEY = f"rsk-{uuid.uuid4().hex}{uuid.uuid4().hex}"
KEY_HASH = hashlib.sha256(KEY.encode()).hexdigest()
BEARER = {"Authorization": f"Bearer {KEY}"}


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert error_shape_problem(response.json()) is None, response.text
    assert response.json()["error"]["type"] == "unauthorized"
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


@pytest.fixture(scope="module")
def auth_gateways(
    vllm_server: VllmServer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, GatewayProcess]]:
    """Two keyed gateways: /metrics open, and /metrics behind the key too."""
    folder = tmp_path_factory.mktemp("auth")
    gateways: dict[str, GatewayProcess] = {}
    try:
        for name, metrics_auth in (("open_metrics", "false"), ("keyed_metrics", "true")):
            gateways[name] = start_gateway(
                {
                    "RSAFE_MODEL_SERVER_URL": vllm_server.url,
                    "RSAFE_REDIS_URL": redis_server.url,
                    "RSAFE_AUTH_ENABLED": "true",
                    "RSAFE_API_KEY_HASHES": KEY_HASH,
                    "RSAFE_METRICS_AUTH": metrics_auth,
                    "RSAFE_LOG_LEVEL": "debug",
                },
                folder / f"{name}.log",
            )
        yield gateways
    finally:
        for gateway in gateways.values():
            stop_process(gateway.process)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {WRONG_KEY}"},
        {"Authorization": f"Bearer {WRONG_KEY} {KEY}"},  # two keys, one of them right
        {"Authorization": "Bearer"},
        {"Authorization": KEY},  # no scheme
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": f"Bearer {KEY[:-1]}"},  # one character short
        {"Authorization": f"Bearer {KEY_HASH}"},  # the hash is not a key
        {"X-API-Key": KEY},  # not the header the gateway reads
    ],
    ids=[
        "none",
        "wrong",
        "two-keys",
        "bare",
        "no-scheme",
        "basic",
        "truncated",
        "hash",
        "x-api-key",
    ],
)
def test_without_the_right_key_every_api_route_is_401(
    auth_gateways: dict[str, GatewayProcess], headers: dict[str, str]
) -> None:
    url = auth_gateways["open_metrics"].url
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        assert_unauthorized(client.post("/v1/moderate", json={"input": "hello"}))
        assert_unauthorized(client.post("/v1/moderate/batch", json={"items": [{"input": "x"}]}))
        assert_unauthorized(client.post("/v1/moderations", json={"input": "hello"}))
        assert_unauthorized(client.get("/v1/policies"))
        assert_unauthorized(client.get("/v1/policies/rsafe-default"))
        assert_unauthorized(client.get("/v1/no-such-route"))  # no route discovery without a key


def test_the_right_key_is_served_and_probes_stay_open(
    auth_gateways: dict[str, GatewayProcess],
) -> None:
    url = auth_gateways["open_metrics"].url
    answer = httpx.post(
        f"{url}/v1/moderate",
        json={"input": f"hello [{uuid.uuid4().hex}]"},
        headers=BEARER,
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["verdict"] in {"safe", "unsafe"}
    lowercase_scheme = {"Authorization": f"bearer {KEY}"}
    assert httpx.get(f"{url}/v1/policies", headers=lowercase_scheme, timeout=10).status_code == 200
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{url}{path}", timeout=10).status_code == 200, path


def test_metrics_are_open_unless_metrics_auth(auth_gateways: dict[str, GatewayProcess]) -> None:
    opened = httpx.get(f"{auth_gateways['open_metrics'].url}/metrics", timeout=10)
    assert opened.status_code == 200 and "rsafe_requests" in opened.text
    keyed = auth_gateways["keyed_metrics"].url
    assert_unauthorized(httpx.get(f"{keyed}/metrics", timeout=10))
    wrong = {"Authorization": f"Bearer {WRONG_KEY}"}
    assert_unauthorized(httpx.get(f"{keyed}/metrics", headers=wrong, timeout=10))
    assert httpx.get(f"{keyed}/metrics", headers=BEARER, timeout=10).status_code == 200
    for path in ("/healthz", "/readyz"):
        assert httpx.get(f"{keyed}{path}", timeout=10).status_code == 200, path


def raw_status(url: str, target: str) -> int:
    """Send a request line exactly as given (no client-side path normalisation)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        head = sock.recv(4096)
    return int(head.split(b" ", 2)[1])


@pytest.mark.parametrize(
    "target",
    [
        "/v1/policies",
        "/v1/policies/",
        "/%76%31/policies",  # percent-encoded "v1"
        "/v1%2Fpolicies",
        "/healthz/../v1/policies",
        "//v1/policies",
        "/V1/policies",
        "/v1/policies?x=/healthz",
        "/v1/policies#/healthz",
        "/v1/./policies",
    ],
)
def test_path_tricks_do_not_get_around_the_key(
    auth_gateways: dict[str, GatewayProcess], target: str
) -> None:
    status = raw_status(auth_gateways["open_metrics"].url, target)
    assert status in {401, 404}, (target, status)


def test_keys_and_hashes_never_reach_the_log(auth_gateways: dict[str, GatewayProcess]) -> None:
    for gateway in auth_gateways.values():
        for headers in (BEARER, {"Authorization": f"Bearer {WRONG_KEY}"}):
            httpx.get(f"{gateway.url}/v1/policies", headers=headers, timeout=10)
            httpx.get(f"{gateway.url}/metrics", headers=headers, timeout=10)
        # Request lines are written in batches, in order (RSAFE_ACCESS_LOG_FLUSH_SECONDS): once a
        # last marked request's line is there, so are the lines above.
        marker = f"log-flush-{uuid.uuid4().hex}"
        httpx.get(f"{gateway.url}/v1/policies", headers={"X-Request-ID": marker}, timeout=10)
        log_path = gateway.log_path
        wait_until(lambda: marker in log_path.read_text(errors="replace"), 10, marker)  # noqa: B023
        log = gateway.log_path.read_text(errors="replace")
        assert '"key_id"' in log  # the log does identify callers, by key id
        for secret in (KEY, WRONG_KEY, KEY_HASH, hashlib.sha256(WRONG_KEY.encode()).hexdigest()):
            assert secret not in log
            assert secret[4:36] not in log  # no fragment of it either


# ---- Rate limits --------------------------------------------------------------------------------


def limited_pair(
    tmp_path: Path, vllm_server: VllmServer, redis_url: str, prefix: str
) -> list[GatewayProcess]:
    gateways: list[GatewayProcess] = []
    try:
        for index in range(2):
            gateways.append(
                start_gateway(
                    {
                        "RSAFE_MODEL_SERVER_URL": vllm_server.url,
                        "RSAFE_REDIS_URL": redis_url,
                        "RSAFE_CACHE_KEY_PREFIX": prefix,  # the SAME prefix: one bucket per key
                        "RSAFE_AUTH_ENABLED": "true",
                        "RSAFE_API_KEY_HASHES": KEY_HASH,
                        "RSAFE_RATE_LIMIT_PER_SECOND": "1",
                        "RSAFE_RATE_LIMIT_BURST": "5",
                        "RSAFE_READINESS_REQUIRES_CACHE": "false",
                    },
                    tmp_path / f"limited-{index}.log",
                )
            )
    except BaseException:
        for gateway in gateways:
            stop_process(gateway.process)
        raise
    return gateways


def burst(gateways: list[GatewayProcess], count: int) -> tuple[list[httpx.Response], float]:
    """`count` requests alternating between the gateways, as fast as one client can."""
    clients = [httpx.Client(base_url=g.url, headers=BEARER, timeout=10) for g in gateways]
    try:
        started = time.monotonic()
        answers = [clients[i % len(clients)].get("/v1/policies") for i in range(count)]
        return answers, time.monotonic() - started
    finally:
        for client in clients:
            client.close()


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert error_shape_problem(response.json()) is None, response.text
    assert response.json()["error"]["type"] == "rate_limited"
    assert int(response.headers["retry-after"]) >= 1


def test_rate_limit_holds_across_two_processes_sharing_redis(
    vllm_server: VllmServer, own_redis: RedisServer, tmp_path: Path
) -> None:
    gateways = limited_pair(tmp_path, vllm_server, own_redis.url, f"rl-{uuid.uuid4().hex[:8]}:")
    try:
        answers, elapsed = burst(gateways, 12)
        statuses = [a.status_code for a in answers]
        print(f"\nshared Redis, 12 requests in {elapsed * 1000:.0f} ms over 2 gateways: {statuses}")
        assert elapsed < 0.8, "too slow to test a 1/s limit"
        assert statuses[:5] == [200] * 5, statuses
        for answer in answers[5:]:
            assert_rate_limited(answer)
        # Both processes refused: the bucket is shared, not per process.
        assert {i % 2 for i, s in enumerate(statuses) if s == 429} == {0, 1}
        # The probes are never rate limited.
        assert httpx.get(f"{gateways[0].url}/healthz", timeout=5).status_code == 200
    finally:
        for gateway in gateways:
            stop_process(gateway.process)


def test_without_redis_each_process_limits_on_its_own(
    vllm_server: VllmServer, tmp_path: Path
) -> None:
    absent = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    gateways = limited_pair(tmp_path, vllm_server, absent, "rl-absent:")
    try:
        answers, elapsed = burst(gateways, 12)
        statuses = [a.status_code for a in answers]
        print(f"\nno Redis, 12 requests in {elapsed * 1000:.0f} ms over 2 gateways: {statuses}")
        assert elapsed < 0.8, "too slow to test a 1/s limit"
        # Each process has its own bucket of 5: 10 pass, the 6th request to each is refused.
        assert statuses[:10] == [200] * 10, statuses
        for answer in answers[10:]:
            assert_rate_limited(answer)
    finally:
        for gateway in gateways:
            stop_process(gateway.process)
