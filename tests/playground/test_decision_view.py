"""The playground's decision view in headless Chromium: a real uvicorn gateway with the decision
log on a real PostgreSQL, reached through the public API only (GET /v1/decisions/{id}).

The model is the decision-log tests' stand-in (decision_log/conftest.py): the subject here is the
page showing what the log holds (a decision, its appeal, its review), not the model's judgement;
the stand-in's verdict is known, so the test can check the exact text the page shows. Every wait
polls (WebDriverWait); nothing sleeps for a fixed time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_gateway, wait_until
from decision_log.conftest import UNSAFE_MARKER, _verdict
from postgres import ensure_shared_postgres, scratch_database
from rsafe_gateway.tenants import hash_key
from standins import ModelStandin

from .conftest import Gateway
from .test_browser import is_shown, text_of, wait

try:
    from selenium.webdriver.common.by import By
except ImportError:  # pragma: no cover - the `browser` fixture fails with the install hint
    By = None  # type: ignore[assignment,misc]

ACME, GLOBEX, ADMIN = "acme-view-key", "globex-view-key", "admin-view-key"
# Typed into a review note: it must show as text, never become markup.
HOSTILE_NOTE = '<img src=x onerror="document.body.dataset.pwned=1"> wrong call'


@pytest.fixture(scope="module")
def logged_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """uvicorn + the decision log (scratch database) + tenants; the stand-in model behind it."""
    folder = tmp_path_factory.mktemp("decision-view")
    keys = folder / "keys.yaml"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"sha256": hash_key(ACME), "tenant": "acme", "scopes": ["moderate", "decisions:read"]},
                    {"sha256": hash_key(GLOBEX), "tenant": "globex", "scopes": ["moderate", "decisions:read"]},
                    {"sha256": hash_key(ADMIN), "tenant": "ops", "scopes": ["admin"]},
                ]
            }
        )
    )  # fmt: skip
    with (
        scratch_database(ensure_shared_postgres()) as database,
        ModelStandin(_verdict).serving() as model,
    ):
        env = {
            "RSAFE_MODEL_SERVER_URL": model.url,
            "RSAFE_REDIS_URL": "",
            "RSAFE_DATABASE_URL": database,
            "RSAFE_DECISION_LOG_FLUSH_SECONDS": "0",
            "RSAFE_AUTH_ENABLED": "true",
            "RSAFE_API_KEYS_FILE": str(keys),
            "RSAFE_PLAYGROUND_ENABLED": "true",
        }
        # /healthz: the stand-in model lists no models, so /readyz would never be ready.
        gateway = start_gateway(env, folder / "gateway.log", ready_path="/healthz", timeout=60)
        try:
            yield gateway
        finally:
            gateway.stop()


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _open_with_key(driver: Any, gateway: Gateway, key: str) -> None:
    driver.get(f"{gateway.url}/playground")
    wait(driver).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    key_field = driver.find_element(By.ID, "api-key")
    key_field.clear()
    key_field.send_keys(key)
    driver.find_element(By.ID, "policy-reload").click()  # the policies need the key, too
    wait(driver).until(lambda d: text_of(d, "policy-status") == "shipped: rsafe-default")


def _show(driver: Any, decision_id: str) -> None:
    field = driver.find_element(By.ID, "decision-id")
    field.clear()
    field.send_keys(decision_id)
    # The click handler says "Loading…" before its first await, so a finished status is this one's.
    driver.find_element(By.ID, "decision-button").click()
    wait(driver).until(lambda d: text_of(d, "decision-status") in {"Done.", "Failed."})


def _history(driver: Any) -> list[str]:
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "#decision-history li")]


def test_a_check_is_shown_from_the_log_with_its_appeal_and_review(
    browser: Any, logged_gateway: Gateway
) -> None:
    _open_with_key(browser, logged_gateway, ACME)
    message = f"please {UNSAFE_MARKER} [{uuid.uuid4().hex[:8]}]"
    browser.find_element(By.ID, "user-message").send_keys(message)
    browser.find_element(By.ID, "run-button").click()
    wait(browser).until(lambda d: is_shown(d, "result-body") or is_shown(d, "result-error"))
    assert not is_shown(browser, "result-error"), text_of(browser, "result-error")
    decision_id = text_of(browser, "result-id")

    # From the check's answer straight to its row (the writer may still be flushing: retry).
    def shown_from_the_log(driver: Any) -> bool:
        driver.find_element(By.ID, "result-show-decision").click()
        wait(driver).until(lambda d: text_of(d, "decision-status") in {"Done.", "Failed."})
        return bool(is_shown(driver, "decision-body"))

    wait(browser).until(shown_from_the_log)
    assert browser.find_element(By.ID, "decision-id").get_attribute("value") == decision_id
    assert text_of(browser, "decision-shown-id") == decision_id
    assert text_of(browser, "decision-verdict") == "unsafe"
    assert text_of(browser, "decision-flagged") == "yes"
    assert text_of(browser, "decision-route") == "/v1/moderate"
    assert text_of(browser, "decision-tenant") == f"acme (key {hash_key(ACME)[:12]})"
    assert text_of(browser, "decision-categories") == "U1"
    assert text_of(browser, "decision-policy-id") == "rsafe-default"
    assert text_of(browser, "decision-model").startswith("rsafe (family ")
    assert "only its SHA-256" in text_of(browser, "decision-content")
    assert _history(browser) == [_history(browser)[0]] and "Decided unsafe" in _history(browser)[0]

    # An appeal (the stand-in flips its verdict under the appeal budget) and a human review.
    appeal = httpx.post(
        f"{logged_gateway.url}/v1/decisions/{decision_id}/appeal",
        json={"input": [{"role": "user", "content": message}]},
        headers=_bearer(ACME),
        timeout=30,
    )
    assert appeal.status_code == 200, appeal.text
    appeal_id = appeal.json()["appeal"]["id"]
    review = httpx.post(
        f"{logged_gateway.url}/v1/decisions/{decision_id}/review",
        json={"outcome": "overturned", "verdict": "safe", "note": HOSTILE_NOTE},
        headers=_bearer(ADMIN),
        timeout=30,
    )
    assert review.status_code == 200, review.text

    def full_history(driver: Any) -> bool:
        _show(driver, decision_id)
        return len(_history(driver)) == 3

    wait(browser).until(full_history)
    decided, appealed, reviewed = _history(browser)
    assert "Decided unsafe (flagged: yes) on /v1/moderate" in decided
    assert f"Appeal {appeal_id} re-judged it safe (flagged: no): overturned" in appealed
    assert f"Review by key {hash_key(ADMIN)[:12]}: overturned, the reviewer's verdict: safe" in (
        reviewed
    )
    assert f"Note: {HOSTILE_NOTE}" in reviewed  # as text
    items = browser.find_elements(By.CSS_SELECTOR, "#decision-history li")
    assert [item.get_attribute("class") for item in items] == [
        "history-decision",
        "history-appeal overturned",
        "history-review overturned",
    ]
    assert browser.find_elements(By.CSS_SELECTOR, "#decision-history img") == []
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-pwned") is None


def test_another_tenant_or_an_unknown_id_gets_a_readable_404(
    browser: Any, logged_gateway: Gateway
) -> None:
    answer = httpx.post(
        f"{logged_gateway.url}/v1/moderate",
        json={"input": "hello"},
        headers=_bearer(ACME),
        timeout=30,
    ).json()
    wait_until(
        lambda: (
            httpx.get(
                f"{logged_gateway.url}/v1/decisions/{answer['id']}",
                headers=_bearer(ACME),
                timeout=5,
            ).status_code
            == 200
        ),
        15,
        "the decision's row",
    )
    _open_with_key(browser, logged_gateway, GLOBEX)
    _show(browser, answer["id"])
    assert not is_shown(browser, "decision-body")
    error = text_of(browser, "decision-error")
    assert error.startswith("404 invalid_request: no decision")
    assert "Decisions are per tenant" in error

    # The admin sees it, whichever tenant it belongs to.
    _open_with_key(browser, logged_gateway, ADMIN)
    _show(browser, answer["id"])
    assert is_shown(browser, "decision-body") and not is_shown(browser, "decision-error")
    assert text_of(browser, "decision-tenant").startswith("acme")
    assert text_of(browser, "decision-verdict") == "safe"
    # The page's own history function, on the API's answer.
    detail = httpx.get(
        f"{logged_gateway.url}/v1/decisions/{answer['id']}", headers=_bearer(ADMIN), timeout=5
    ).json()
    entries = browser.execute_async_script(
        """
        const [detail, done] = arguments;
        import('/playground/static/app.js').then((m) => done(m.decisionHistory(detail)))
          .catch((error) => done({error: String(error)}));
        """,
        detail,
    )
    assert [entry["kind"] for entry in entries] == ["decision"]
    assert entries[0]["at"] == detail["decision"]["created_at"]


def test_the_page_needs_nothing_but_the_public_decisions_api() -> None:
    repo = Path(__file__).resolve().parents[2]
    script = (repo / "service" / "rsafe_gateway" / "playground" / "app.js").read_text()
    assert "/v1/decisions/${encodeURIComponent(id)}" in script
    assert "/v1/decisions?" not in script and "/review" not in script and "/appeal" not in script
