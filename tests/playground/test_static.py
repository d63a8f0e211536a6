"""The playground's page and assets: security headers, nothing external, nothing inline, the allow-list.

These run in-process (no model needed); the browser tests in test_browser.py drive the real stack.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rsafe_gateway.routes import playground

STATIC_DIR = Path(playground.__file__).resolve().parents[1] / "playground"
EXPECTED_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
ASSET_URLS = {
    "/playground": "text/html",
    "/playground/static/app.js": "text/javascript",
    "/playground/static/style.css": "text/css",
}
# A URL with a scheme and host, or protocol-relative (`//host`) where a URL can start: in an
# attribute, a CSS url(), or a JavaScript string or import.
ABSOLUTE_URL = re.compile(r"https?:|wss?:|ftp:", re.IGNORECASE)
PROTOCOL_RELATIVE = re.compile(
    r"""(?:\b(?:src|href|action|srcset|poster|data)\s*=\s*["']?\s*//)"""
    r"""|(?:url\(\s*["']?\s*//)|(?:@import\s*["']?\s*//)|(?:["'`]\s*//)""",
    re.IGNORECASE,
)


@pytest.fixture
def client(playground_client: Callable[..., TestClient]) -> TestClient:
    return playground_client()


@pytest.mark.parametrize(("url", "media_type"), ASSET_URLS.items())
def test_served_with_type_and_security_headers(
    client: TestClient, url: str, media_type: str
) -> None:
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_files_served_are_the_shipped_files(client: TestClient) -> None:
    assert client.get("/playground").content == (STATIC_DIR / "index.html").read_bytes()
    assert client.get("/playground/static/app.js").content == (STATIC_DIR / "app.js").read_bytes()


def test_etag_revalidation(client: TestClient) -> None:
    first = client.get("/playground/static/app.js")
    etag = first.headers["etag"]
    again = client.get("/playground/static/app.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["content-security-policy"] == EXPECTED_CSP


@pytest.mark.parametrize("url", ASSET_URLS)
def test_no_external_reference(client: TestClient, url: str) -> None:
    text = client.get(url).text
    assert not ABSOLUTE_URL.search(text), ABSOLUTE_URL.search(text)
    assert not PROTOCOL_RELATIVE.search(text), PROTOCOL_RELATIVE.search(text)
    assert "javascript:" not in text.lower()


class PageAudit(HTMLParser):
    """Collects what the CSP would block or what would load from elsewhere."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.script_bodies: list[str] = []
        self.style_elements = 0
        self.style_attributes: list[str] = []
        self.event_handlers: list[str] = []
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style":
            self.style_elements += 1
        for name, value in attrs:
            if name == "style":
                self.style_attributes.append(tag)
            if name.startswith("on"):
                self.event_handlers.append(f"{tag} {name}")
            if name in {"src", "href", "action", "srcset", "poster", "formaction"} and value:
                self.urls.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_bodies.append(data)


def test_page_has_nothing_inline_and_only_own_assets(client: TestClient) -> None:
    audit = PageAudit()
    audit.feed(client.get("/playground").text)
    assert audit.scripts == [{"type": "module", "src": "/playground/static/app.js"}]
    assert audit.script_bodies == []
    assert audit.style_elements == 0
    assert audit.style_attributes == []
    assert audit.event_handlers == []
    for url in audit.urls:
        assert url.startswith(("/playground/static/", "#")) or url == "data:,", url


def test_assets_hold_no_inline_style_or_markup_injection() -> None:
    script = (STATIC_DIR / "app.js").read_text()
    # The CSP blocks style attributes set from script; text from users and the model is never markup.
    assert "setAttribute('style'" not in script and 'setAttribute("style"' not in script
    assert not re.search(r"\.(?:inner|outer)HTML\b|insertAdjacentHTML|document\.write", script)
    assert not re.search(r"\beval\(|new Function\b", script)
    # The API key lives in memory only.
    for storage in ("localStorage", "sessionStorage", "document.cookie", "indexedDB"):
        assert storage not in script


@pytest.mark.parametrize("url", ["/playground", "/playground/static/app.js"])
def test_disabled_playground_is_a_404_in_the_error_shape(
    playground_client: Callable[..., TestClient], url: str
) -> None:
    client = playground_client(playground_enabled=False)
    response = client.get(url)
    assert response.status_code == 404
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == "invalid_request"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["error"]["param"] is None
    # The API itself is not affected.
    assert client.get("/v1/policies").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/playground/static/..%2f..%2fsettings.py",
        "/playground/static/..%2F..%2F..%2Fpyproject.toml",
        "/playground/static/%2e%2e%2froutes%2fplayground.py",
        "/playground/static/..%5c..%5csettings.py",
        "/playground/static/....//....//settings.py",
        "/playground/static/%2e%2e",
        "/playground/static/app.py",
        "/playground/static/APP.JS",
        "/playground/static/index.html",
        "/playground/static/app.js%00.py",
        "/playground/static/",
        "/playground/static/.",
        "/playground/static/%2fetc%2fpasswd",
        "/playground/static/playground/app.js",
    ],
)
def test_path_traversal_and_unlisted_files_are_rejected(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code, response.text[:200])
    body = response.json()
    assert body["error"]["type"] == "invalid_request"
    assert "import" not in response.text and "BaseSettings" not in response.text


def asgi_get(app: Any, raw_path: str) -> tuple[int, bytes]:
    """One GET straight into the ASGI app, with the path exactly as given (httpx would normalise it)."""
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(), "root_path": "",
        "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1234), "server": ("testserver", 80), "state": {},
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], body


@pytest.mark.parametrize(
    "raw_path",
    [
        "/playground/static/../../settings.py",
        "/playground/static/../routes/playground.py",
        "/playground/static/..\\..\\settings.py",
        "/playground/static/..",
        "/playground/static//etc/passwd",
    ],
)
def test_raw_dot_segments_never_reach_the_file_system(client: TestClient, raw_path: str) -> None:
    status, body = asgi_get(client.app, raw_path)
    assert status == 404, (raw_path, status, body[:200])
    assert json.loads(body)["error"]["type"] == "invalid_request"


def test_only_allow_listed_names_can_be_loaded() -> None:
    for name in ["../settings.py", "..\\settings.py", "/etc/passwd", "", "static/app.js"]:
        with pytest.raises(KeyError):
            playground.load_asset(name)


def test_playground_is_not_in_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/playground")]
