"""The `rsafe` CLI against REAL gateway processes.

Happy paths go through the session's gateway (real vLLM + Redis). The tiny model's verdicts are
noise, so exit codes 0 and 1 are pinned with gateways in front of stand-in model servers that
answer a fixed `safe` completion, or a completion without a verdict (undetermined → flagged under
the default closed fail mode).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from conftest import GatewayProcess, free_port, start_gateway, stop_process
from rsafe_gateway.cli import app
from standins import standin_server

pytestmark = pytest.mark.e2e

SAFE_COMPLETION = (
    b'{"choices": [{"message": {"content": "<think>fine</think>\\\\boxed{safe}"},'
    b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}'
)
NO_VERDICT_COMPLETION = (
    b'{"choices": [{"message": {"content": "I cannot decide."}, "finish_reason": "stop"}],'
    b' "usage": {"prompt_tokens": 5, "completion_tokens": 3}}'
)
POLICY_FILE = """---
id: cli-test
version: 0.0.1
title: CLI test
description: test
categories:
  - id: X1
    name: Spam
    description: spam
---
X1 - Spam: unsolicited advertising.
"""


def unique(text: str) -> str:
    return f"{text} [{uuid.uuid4().hex[:8]}]"


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def safe_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway whose model server always answers `safe`."""
    with standin_server(body=SAFE_COMPLETION) as model_url:
        gateway = start_gateway(
            {"RSAFE_MODEL_SERVER_URL": model_url, "RSAFE_REDIS_URL": ""},
            tmp_path_factory.mktemp("safe-gw") / "gateway.log",
        )
        yield gateway.url
        stop_process(gateway.process)


@pytest.fixture(scope="module")
def flagging_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway whose model server never gives a verdict: flagged (fail mode closed)."""
    with standin_server(body=NO_VERDICT_COMPLETION) as model_url:
        gateway = start_gateway(
            {
                "RSAFE_MODEL_SERVER_URL": model_url,
                "RSAFE_REDIS_URL": "",
                "RSAFE_FAIL_MODE": "closed",
            },
            tmp_path_factory.mktemp("flag-gw") / "gateway.log",
        )
        yield gateway.url
        stop_process(gateway.process)


def test_moderate_human_output(gateway_process: GatewayProcess) -> None:
    code, out, _ = invoke("moderate", unique("How do I bake bread?"), "--url", gateway_process.url)
    assert code in (0, 1)
    assert "verdict:" in out and "policy rsafe-default" in out and "reasoning:" in out
    assert ("FLAGGED" in out) is (code == 1)


def test_moderate_json_exit_code_follows_flagged(gateway_process: GatewayProcess) -> None:
    code, out, _ = invoke("moderate", unique("Hello!"), "--json", "--url", gateway_process.url)
    answer = orjson.loads(out)
    assert answer["verdict"] in {"safe", "unsafe"}
    assert code == (1 if answer["flagged"] else 0)


def test_moderate_policy_file_and_policy_id(
    gateway_process: GatewayProcess, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.md"
    policy.write_text(POLICY_FILE, encoding="utf-8")
    _, out, _ = invoke(
        "moderate",
        unique("Buy watches!"),
        "--policy",
        str(policy),
        "--json",
        "--url",
        gateway_process.url,
    )
    inline = orjson.loads(out)
    body = POLICY_FILE.split("---\n", 2)[2]  # the front matter is not sent
    assert inline["policy"]["sha256"] == hashlib.sha256(body.encode()).hexdigest()
    _, out, _ = invoke(
        "moderate",
        unique("A story"),
        "--policy-id",
        "kids-education",
        "--json",
        "--url",
        gateway_process.url,
    )
    assert orjson.loads(out)["policy"]["id"] == "kids-education"


def test_moderate_response_to(gateway_process: GatewayProcess) -> None:
    code, out, _ = invoke(
        "moderate", "Mix flour and water, then bake.", "--response-to", unique("How do I bake bread?"),
        "--json", "--url", gateway_process.url,
    )  # fmt: skip
    assert code in (0, 1)
    assert orjson.loads(out)["usage"]["prompt_tokens"] > 0
    # The text is sent as the assistant's reply to a user turn: the gateway names that turn.
    code, _, err = invoke("moderate", "reply", "--response-to", "  ", "--url", gateway_process.url)
    assert code == 3
    assert "input[0].content" in err


def test_jsonl_bulk_writes_one_line_per_request_in_order(gateway_process: GatewayProcess) -> None:
    policy_ids = ["kids-education", "rsafe-default", "mlcommons-hazards", "financial-services"]
    lines = [
        orjson.dumps({"input": unique(f"q{i}"), "policy_id": p}).decode()
        for i, p in enumerate(policy_ids)
    ]
    lines.append(
        orjson.dumps(
            {"text": "Sure, here it is.", "response_to": unique("Hi"), "label": 1}
        ).decode()
    )
    lines.append("")  # blank lines are skipped
    stdin = "\n".join(lines) + "\n"
    code, out, _ = invoke(
        "moderate", "-", "--concurrency", "3", "--url", gateway_process.url, stdin=stdin
    )
    answers = [orjson.loads(line) for line in out.splitlines()]
    assert len(answers) == 5
    assert [a["policy"]["id"] for a in answers[:4]] == policy_ids
    assert answers[4]["policy"]["id"] == "rsafe-default"
    assert code == (1 if any(a["flagged"] for a in answers) else 0)
    # --jsonl is the same as `-`; CLI defaults apply to lines that do not set them
    code, out, _ = invoke(
        "moderate", "--jsonl", "--policy-id", "kids-education", "--no-reasoning",
        "--url", gateway_process.url, stdin=orjson.dumps({"text": unique("x")}).decode(),
    )  # fmt: skip
    answer = orjson.loads(out)
    assert answer["policy"]["id"] == "kids-education" and answer["reasoning"] is None


def test_jsonl_errors_take_the_line_s_place(gateway_process: GatewayProcess) -> None:
    stdin = "\n".join(
        [
            orjson.dumps({"input": unique("ok")}).decode(),
            "not json",
            orjson.dumps({"input": "hello", "policy_id": "no-such-policy"}).decode(),
        ]
    )
    code, out, _ = invoke("moderate", "-", "--url", gateway_process.url, stdin=stdin)
    results = [orjson.loads(line) for line in out.splitlines()]
    assert len(results) == 3 and "verdict" in results[0]
    assert results[1] == {"error": results[1]["error"], "line": 2}
    assert results[1]["error"]["type"] == "invalid_line"
    assert results[2]["error"]["param"] == "policy_id" and results[2]["line"] == 3
    assert code == 3  # a service error outranks a bad line
    code, out, _ = invoke("moderate", "-", "--url", gateway_process.url, stdin='{"nope": 1}\n')
    assert code == 2 and orjson.loads(out)["error"]["type"] == "invalid_line"


def test_policies(gateway_process: GatewayProcess) -> None:
    code, out, _ = invoke("policies", "--url", gateway_process.url)
    assert code == 0 and "rsafe-default (default)" in out and "kids-education" in out
    code, out, _ = invoke("policies", "--json", "--url", gateway_process.url)
    assert code == 0 and orjson.loads(out)["default_policy_id"] == "rsafe-default"
    code, out, _ = invoke("policies", "kids-education", "--json", "--url", gateway_process.url)
    assert code == 0 and orjson.loads(out)["text"].strip()
    code, _, err = invoke("policies", "no-such-policy", "--url", gateway_process.url)
    assert code == 3 and "404" in err


def test_exit_0_when_safe(safe_gateway: str) -> None:
    code, out, _ = invoke("moderate", "hello", "--url", safe_gateway)
    assert code == 0 and "not flagged" in out
    stdin = '{"text": "a"}\n{"text": "b"}\n'
    code, out, _ = invoke("moderate", "-", "--url", safe_gateway, "--no-progress", stdin=stdin)
    assert code == 0 and len(out.splitlines()) == 2


def test_exit_1_when_flagged(flagging_gateway: str, safe_gateway: str) -> None:
    code, out, _ = invoke("moderate", "hello", "--json", "--url", flagging_gateway)
    answer = orjson.loads(out)
    assert code == 1
    assert answer["flagged"] is True and answer["verdict"] == "undetermined"
    assert answer["fail_mode"] == "closed"
    code, out, _ = invoke("moderate", "hello", "--url", flagging_gateway)
    assert code == 1 and "FLAGGED" in out and "fail mode closed" in out
    code, _, _ = invoke("moderate", "--jsonl", "--url", flagging_gateway, stdin='{"text": "a"}\n')
    assert code == 1


def test_exit_2_on_usage_errors(tmp_path: Path) -> None:
    policy = tmp_path / "p.md"
    policy.write_text("X1 - Spam\n", encoding="utf-8")
    assert invoke("moderate")[0] == 2  # no text
    assert invoke("moderate", "x", "--policy", str(policy), "--policy-id", "rsafe-default")[0] == 2
    assert invoke("moderate", "x", "--policy", str(tmp_path / "missing.md"))[0] == 2
    assert invoke("moderate", "x", "--jsonl")[0] == 2
    assert invoke("moderate", "x", "--no-such-option")[0] == 2
    assert invoke("no-such-command")[0] == 2


def test_exit_3_when_the_gateway_is_unreachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = invoke("moderate", "hello", "--url", url, "--timeout", "2")
    assert code == 3 and "cannot reach" in err
    assert invoke("policies", "--url", url)[0] == 3
    code, out, _ = invoke("moderate", "-", "--url", url, stdin='{"text": "a"}\n')
    assert code == 3 and orjson.loads(out)["error"]["type"] == "connection_error"


def test_api_key_from_environment(safe_gateway: str) -> None:
    result = CliRunner().invoke(
        app, ["moderate", "hello", "--url", safe_gateway], env={"RSAFE_API_KEY": "k"}
    )
    assert result.exit_code == 0  # the gateway ignores a key it does not ask for


def test_console_entry_point_and_eval_mount() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from rsafe_gateway.cli import main; main()", "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0
    for command in ("moderate", "policies", "eval"):
        assert command in result.stdout
    code, out, _ = invoke("eval", "--help")
    assert code == 0 and "run" in out
