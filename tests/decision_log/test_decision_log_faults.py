"""Proof under load, with real gateway processes: PostgreSQL killed and restarted while requests
flow (a PRIVATE server, so the shared one is never touched), and a soak whose every answer is a row.

The model server is the stand-in (the subject is the log, not the model): load tests against the
CPU vLLM would measure vLLM.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from conftest import GatewayProcess, free_port, start_gateway, stop_process, wait_until
from postgres import PrivatePostgres, count_rows, decision_ids, private_postgres

SOAK_REQUESTS = int(os.environ.get("RSAFE_SOAK_REQUESTS", "2000"))


@dataclass
class Load:
    """Requests sent by `workers` threads until stopped; each answer's status and id, and when."""

    url: str
    workers: int = 8
    answered: dict[str, float] = field(default_factory=dict)  # id of each 200 → time answered
    refused: list[tuple[int, float]] = field(default_factory=list)  # non-200 status, time
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _work(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            sent = 0
            while not self._stop.is_set():
                sent += 1
                # Half repeat (cache hits), half new (stand-in model calls).
                text = f"load {sent % 20}" if sent % 2 else f"load {worker}-{sent}"
                response = client.post("/v1/moderate", json={"input": text})
                with self._lock:
                    if response.status_code == 200:
                        self.answered[response.json()["id"]] = time.monotonic()
                    else:
                        self.refused.append((response.status_code, time.monotonic()))

    def start(self) -> None:
        for worker in range(self.workers):
            thread = threading.Thread(target=self._work, args=(worker,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def answered_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(1 for at in self.answered.values() if start <= at <= end)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    server = private_postgres(free_port())
    yield server
    server.remove()


def gateway_with_log(
    verdict_server: str, database_url: str, tmp_path: Path, **env: str
) -> GatewayProcess:
    return start_gateway(
        {
            "RSAFE_MODEL_SERVER_URL": verdict_server,
            "RSAFE_REDIS_URL": "",
            "RSAFE_DATABASE_URL": database_url,
            "RSAFE_DECISION_LOG_WRITE_TIMEOUT_SECONDS": "1.0",
            **env,
        },
        tmp_path / "gateway.log",
    )


def outage_under_load(server: PrivatePostgres, load: Load) -> tuple[float, float]:
    """Kill PostgreSQL while `load` runs, restart it; the outage's start and end."""
    load.start()
    wait_until(lambda: len(load.answered) >= 100, 30, "load before the outage")
    down = time.monotonic()
    server.kill()
    time.sleep(2.0)  # the outage itself: a duration, not a readiness wait
    server.start()
    up = time.monotonic()
    wait_until(lambda: load.answered_between(up, time.monotonic()) >= 100, 30, "load after")
    load.stop()
    return down, up


def test_best_effort_every_answered_decision_is_in_the_table_after_a_kill(
    verdict_server: str, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    gateway = gateway_with_log(verdict_server, private_pg.url, tmp_path)
    try:
        wait_until(lambda: count_rows(private_pg.url) >= 0, 30, "the migrated schema")
        load = Load(gateway.url)
        down, up = outage_under_load(private_pg, load)
        during = load.answered_between(down, up)
        assert during > 0  # moderation went on while PostgreSQL was down
        assert load.refused == []
        wait_until(lambda: count_rows(private_pg.url) >= len(load.answered), 30, "all rows")
        stored = decision_ids(private_pg.url)
        print(
            f"\nbest_effort: {len(load.answered)} answered ({during} while PostgreSQL was down), "
            f"{len(stored)} rows, {len(set(load.answered) - set(stored))} missing"
        )
        assert sorted(stored) == sorted(load.answered)
    finally:
        stop_process(gateway.process)


def test_required_no_answer_leaves_without_a_row_across_a_kill(
    verdict_server: str, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    gateway = gateway_with_log(
        verdict_server, private_pg.url, tmp_path, RSAFE_DECISION_LOG_MODE="required"
    )
    try:
        wait_until(lambda: count_rows(private_pg.url) >= 0, 30, "the migrated schema")
        load = Load(gateway.url)
        down, up = outage_under_load(private_pg, load)
        assert {status for status, _ in load.refused} <= {503}
        refused_during = sum(1 for _, at in load.refused if down <= at <= up + 5)
        assert refused_during > 0  # the outage was felt: 503s, not answers without rows
        stored = set(decision_ids(private_pg.url))
        missing = set(load.answered) - stored
        print(
            f"\nrequired: {len(load.answered)} answered, {len(load.refused)} refused (503), "
            f"{len(stored)} rows, {len(missing)} answered without a row"
        )
        assert missing == set()
    finally:
        stop_process(gateway.process)


def test_soak_every_request_is_one_row(verdict_server: str, database: str, tmp_path: Path) -> None:
    gateway = gateway_with_log(verdict_server, database, tmp_path)
    try:
        ids: list[str] = []
        lock = threading.Lock()
        per_worker = SOAK_REQUESTS // 8

        def work(worker: int) -> None:
            with httpx.Client(base_url=gateway.url, timeout=30) as client:
                for index in range(per_worker):
                    response = client.post("/v1/moderate", json={"input": f"soak {index % 50}"})
                    assert response.status_code == 200
                    with lock:
                        ids.append(response.json()["id"])

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(ids) == per_worker * 8
        wait_until(lambda: count_rows(database) >= len(ids), 60, f"{len(ids)} rows")
        assert sorted(decision_ids(database)) == sorted(ids)
    finally:
        stop_process(gateway.process)
