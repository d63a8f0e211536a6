"""`rsafe`: the gateway from the command line (a running gateway, over its HTTP API).

    rsafe moderate "How do I pick a lock?"                     # prompt check, human-readable
    rsafe moderate "Insert a tension wrench..." --response-to "How do I pick a lock?"
    rsafe moderate "text" --policy my-policy.md --json          # inline policy, JSON answer
    rsafe moderate "text" --policy-id kids-education
    rsafe moderate - < items.jsonl > results.jsonl             # bulk: also `--jsonl`
    rsafe policies [ID] [--json]
    rsafe eval ...                                              # see `rsafe eval --help`
    rsafe decisions migrate|export                              # the decision log (PostgreSQL)

Every command takes `--url` (env RSAFE_URL, default http://127.0.0.1:8080), `--api-key` (env
RSAFE_API_KEY, sent as `Authorization: Bearer …`) and `--timeout`.

Bulk mode reads JSONL from stdin, one request per line: `{"input": …, "policy_id": …, …}` (the
fields of POST /v1/moderate; other keys are ignored) or `{"text": …}` (optionally with
`"response_to": …`, the user prompt the text answers). `--policy`/`--policy-id`/`--no-reasoning`/
`--no-cache` apply to lines that do not set them. It writes one JSON line per non-blank input line,
in input order: the answer, or `{"error": {type, message, param}, "line": N}`. At most
`--concurrency` requests are in flight; a progress bar goes to stderr.

Exit codes:
    0  every check is safe (flagged: false)
    1  at least one check is flagged
    2  usage error: bad options or arguments, unreadable policy file, malformed JSONL line
    3  service/API error: the gateway answered an error, or could not be reached
In bulk mode the worst applies, in the order 3 > 2 > 1 > 0 (every line is still attempted).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from .client import (
    DEFAULT_BASE_URL,
    AsyncRSafeClient,
    ModerationInput,
    RSafeAPIError,
    RSafeClient,
    RSafeConnectionError,
    RSafeError,
    moderation_payload,
)
from .decision_log.cli import decisions_app
from .evaluation.cli import eval_app
from .protocol import ModerationResponse, PolicyDetail, PolicyList

EXIT_SAFE = 0
EXIT_FLAGGED = 1
EXIT_USAGE = 2
EXIT_SERVICE = 3

REQUEST_FIELDS = ("input", "target", "policy", "policy_id", "reasoning", "cache")
REASONING_SHOWN_CHARS = 400

app = typer.Typer(
    help="Moderate text with an RSafe gateway, list its policies, evaluate it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")
app.add_typer(decisions_app, name="decisions")

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="RSAFE_URL", help="the gateway's base URL", show_default=True),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option("--api-key", envvar="RSAFE_API_KEY", help="bearer token for the gateway"),
]
TimeoutOption = Annotated[
    float, typer.Option("--timeout", min=0.1, help="seconds to wait for each answer")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON (for scripts)")]


def _stdout() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(error: RSafeError) -> typer.Exit:
    _stderr().print(f"[red]error:[/red] {escape(str(error))}")
    return typer.Exit(EXIT_SERVICE)


def _write_json(document: Any) -> None:
    sys.stdout.write(orjson.dumps(document).decode() + "\n")
    sys.stdout.flush()


def read_policy_file(path: Path) -> str:
    """The policy text of a file: plain text, or a policy file whose front matter is dropped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--policy") from exc
    if text.startswith("---"):
        parts = text.split("\n---", 1)
        if len(parts) == 2:
            text = parts[1].split("\n", 1)[1] if "\n" in parts[1] else ""
    if not text.strip():
        raise typer.BadParameter(f"{path} has no policy text", param_hint="--policy")
    return text


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def print_answer(answer: ModerationResponse, console: Console) -> None:
    """The human-readable form of one answer."""
    colour = "red" if answer.flagged else "green"
    head = "FLAGGED" if answer.flagged else "not flagged"
    policy = " ".join(part for part in (answer.policy.id, answer.policy.version) if part)
    details = [f"policy {policy}", f"{answer.latency_ms:.0f} ms"]
    if answer.cached:
        details.append("cached")
    if answer.fail_mode:
        details.append(f"decided by fail mode {answer.fail_mode}")
    console.print(
        f"[bold {colour}]{head}[/bold {colour}]  verdict: [bold]{answer.verdict.value}[/bold]"
        f"  ({escape(', '.join(details))})"
    )
    console.print(f"categories: {escape(', '.join(answer.categories)) or '-'}")
    if answer.reasoning:
        console.print(f"reasoning: {escape(_shorten(answer.reasoning, REASONING_SHOWN_CHARS))}")
    console.print(f"id: {answer.id}", style="dim")


def _check_policy_options(policy: Path | None, policy_id: str | None) -> str | None:
    if policy is not None and policy_id is not None:
        raise typer.BadParameter(
            "give either --policy or --policy-id, not both", param_hint="--policy"
        )
    return read_policy_file(policy) if policy is not None else None


@app.command()
def moderate(
    text: Annotated[
        str | None,
        typer.Argument(help="the text to judge; `-` reads JSONL requests from stdin"),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="a policy file (plain text, or a policy file with front matter)"
        ),
    ] = None,
    policy_id: Annotated[
        str | None, typer.Option("--policy-id", help="a named policy (see `rsafe policies`)")
    ] = None,
    response_to: Annotated[
        str | None,
        typer.Option(
            "--response-to",
            help="the user prompt that TEXT answers: judge TEXT as the assistant's reply",
        ),
    ] = None,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="read JSONL requests from stdin (as TEXT `-`)")
    ] = False,
    json_output: JsonOption = False,
    reasoning: Annotated[
        bool, typer.Option("--reasoning/--no-reasoning", help="ask for the model's reasoning")
    ] = True,
    cache: Annotated[
        bool, typer.Option("--cache/--no-cache", help="use the gateway's decision cache")
    ] = True,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, max=256, help="bulk: requests in flight")
    ] = 8,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="bulk: progress bar on stderr")
    ] = True,
    url: UrlOption = DEFAULT_BASE_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Judge TEXT (a prompt, or with --response-to a reply), or JSONL requests from stdin."""
    policy_text = _check_policy_options(policy, policy_id)
    bulk = jsonl or text == "-"
    if bulk:
        if text not in (None, "-"):
            raise typer.BadParameter("with --jsonl, give no TEXT (or `-`)", param_hint="TEXT")
        if response_to is not None:
            raise typer.BadParameter(
                "--response-to is for one text; in JSONL put `response_to` on the line",
                param_hint="--response-to",
            )
        defaults: dict[str, Any] = {"policy": policy_text, "policy_id": policy_id}
        if not reasoning:
            defaults["reasoning"] = False
        if not cache:
            defaults["cache"] = False
        code = asyncio.run(
            _bulk(
                _stdin_lines(),
                {k: v for k, v in defaults.items() if v is not None},
                url=url,
                api_key=api_key,
                timeout_seconds=timeout,
                concurrency=concurrency,
                show_progress=progress,
            )
        )
        raise typer.Exit(code)

    if text is None:
        raise typer.BadParameter("give the TEXT to judge, or `-` / --jsonl for stdin")
    content: ModerationInput = text
    if response_to is not None:
        content = [
            {"role": "user", "content": response_to},
            {"role": "assistant", "content": text},
        ]
    try:
        with RSafeClient(url, api_key=api_key, timeout=timeout) as client:
            answer = client.moderate(
                content,
                target="response" if response_to is not None else None,
                policy=policy_text,
                policy_id=policy_id,
                reasoning=reasoning,
                cache=cache,
            )
    except RSafeError as exc:
        raise _fail(exc) from None
    if json_output:
        _write_json(answer.model_dump(mode="json"))
    else:
        print_answer(answer, _stdout())
    raise typer.Exit(EXIT_FLAGGED if answer.flagged else EXIT_SAFE)


def _stdin_lines() -> Iterator[str]:
    yield from sys.stdin


class LineError(Exception):
    """A JSONL line that is not a moderation request."""


def request_from_line(line: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The POST /v1/moderate body for one JSONL line (`input`, or `text` [+ `response_to`])."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise LineError("a line must be a JSON object")
    if "input" in document:
        body = {key: document[key] for key in REQUEST_FIELDS if key in document}
    elif isinstance(document.get("text"), str):
        response_to = document.get("response_to")
        if response_to is None:
            content: ModerationInput = document["text"]
        elif isinstance(response_to, str):
            content = [
                {"role": "user", "content": response_to},
                {"role": "assistant", "content": document["text"]},
            ]
        else:
            raise LineError("'response_to' must be a string")
        body = moderation_payload(content, target="response" if response_to else None)
        body.update({k: document[k] for k in REQUEST_FIELDS if k in document and k != "input"})
    else:
        raise LineError("a line needs 'input' or a string 'text'")
    if "policy" not in body and "policy_id" not in body:
        body.update({k: v for k, v in defaults.items() if k in ("policy", "policy_id")})
    for key in ("reasoning", "cache"):
        if key in defaults and key not in body:
            body[key] = defaults[key]
    return body


async def _judge(client: AsyncRSafeClient, body: dict[str, Any]) -> ModerationResponse:
    return await client.moderate(
        body["input"],
        target=body.get("target"),
        policy=body.get("policy"),
        policy_id=body.get("policy_id"),
        reasoning=bool(body.get("reasoning", True)),
        cache=bool(body.get("cache", True)),
    )


async def _bulk(
    lines: Iterator[str],
    defaults: dict[str, Any],
    *,
    url: str,
    api_key: str | None,
    timeout_seconds: float,
    concurrency: int,
    show_progress: bool,
) -> int:
    """Judge JSONL lines with at most `concurrency` in flight; write answers in input order."""
    saw = {"flagged": False, "usage": False, "service": False}
    progress = Progress(
        SpinnerColumn(),
        TextColumn("moderating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[flagged]} flagged, {task.fields[errors]} errors"),
        console=_stderr(),
        disable=not show_progress,
        transient=False,
    )
    task_id = progress.add_task("moderate", total=None, flagged=0, errors=0)
    counts = {"flagged": 0, "errors": 0}

    def emit(number: int, outcome: ModerationResponse | BaseException) -> None:
        if isinstance(outcome, ModerationResponse):
            _write_json(outcome.model_dump(mode="json"))
            if outcome.flagged:
                saw["flagged"] = True
                counts["flagged"] += 1
        else:
            if isinstance(outcome, RSafeAPIError):
                error = outcome.to_dict()
                saw["service"] = True
            elif isinstance(outcome, RSafeConnectionError):
                error = {"error": {"type": "connection_error", "message": str(outcome)}}
                saw["service"] = True
            else:  # LineError
                error = {"error": {"type": "invalid_line", "message": str(outcome)}}
                saw["usage"] = True
            error["error"].setdefault("param", None)
            _write_json({**error, "line": number})
            counts["errors"] += 1
        progress.update(task_id, advance=1, flagged=counts["flagged"], errors=counts["errors"])

    pending: deque[tuple[int, asyncio.Future[ModerationResponse]]] = deque()

    async def flush(keep: int) -> None:
        while len(pending) > keep:
            number, future = pending.popleft()
            try:
                emit(number, await future)
            except (RSafeError, LineError) as exc:
                emit(number, exc)

    with progress:
        async with AsyncRSafeClient(
            url, api_key=api_key, timeout=timeout_seconds, max_connections=concurrency
        ) as client:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                future: asyncio.Future[ModerationResponse]
                try:
                    body = request_from_line(line, defaults)
                except LineError as exc:
                    future = asyncio.get_running_loop().create_future()
                    future.set_exception(exc)
                else:
                    future = asyncio.ensure_future(_judge(client, body))
                pending.append((number, future))
                await flush(concurrency - 1)
            await flush(0)
    if saw["service"]:
        return EXIT_SERVICE
    if saw["usage"]:
        return EXIT_USAGE
    return EXIT_FLAGGED if saw["flagged"] else EXIT_SAFE


@app.command()
def policies(
    policy_id: Annotated[
        str | None, typer.Argument(help="show this policy in full (with its text)")
    ] = None,
    json_output: JsonOption = False,
    url: UrlOption = DEFAULT_BASE_URL,
    api_key: ApiKeyOption = None,
    timeout: TimeoutOption = 60.0,
) -> None:
    """List the gateway's named policies, or show one."""
    try:
        with RSafeClient(url, api_key=api_key, timeout=timeout) as client:
            found: PolicyList | PolicyDetail = (
                client.policy(policy_id) if policy_id is not None else client.policies()
            )
    except RSafeError as exc:
        raise _fail(exc) from None
    if json_output:
        _write_json(found.model_dump(mode="json"))
        return
    console = _stdout()
    if isinstance(found, PolicyDetail):
        console.print(
            f"[bold]{escape(found.id)}[/bold] {escape(found.version)}: {escape(found.title)}"
        )
        console.print(escape(found.description))
        console.print(f"sha256: {found.sha256}", style="dim")
        console.print()
        console.print(escape(found.text.strip()))
        return
    table = Table("id", "version", "title", "categories", box=None, pad_edge=False)
    for item in found.policies:
        marker = " (default)" if item.id == found.default_policy_id else ""
        table.add_row(
            escape(item.id + marker),
            escape(item.version),
            escape(item.title),
            str(len(item.categories)),
        )
    console.print(table)


def main() -> None:
    """The `rsafe` console script."""
    app()


if __name__ == "__main__":
    main()
