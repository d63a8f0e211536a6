"""The unified evaluation item, and JSONL load/save.

Every benchmark, whatever its own format, becomes a list of `EvalItem`: a prompt, optionally the
assistant's response (then the item is a response-level check), a gold label `safe`/`unsafe`, the
data set it came from, and optionally the policy to judge it under (named or inline).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Label = Literal["safe", "unsafe"]


class EvalItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    prompt: str
    response: str | None = None
    label: Label
    source: str = Field(min_length=1, description="the data set (metrics are reported per source)")
    policy_id: str | None = None
    policy: str | None = Field(default=None, description="inline policy text")
    license: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_policy(self) -> EvalItem:
        if self.policy_id is not None and self.policy is not None:
            raise ValueError("give either policy_id or policy, not both")
        return self

    @property
    def target(self) -> Literal["prompt", "response"]:
        return "prompt" if self.response is None else "response"

    def request_body(self, *, reasoning: bool = True, cache: bool = False) -> dict[str, Any]:
        """The /v1/moderate request that judges this item."""
        body: dict[str, Any] = {"reasoning": reasoning, "cache": cache}
        if self.response is None:
            body["input"] = self.prompt
            body["target"] = "prompt"
        else:
            body["input"] = [
                {"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.response},
            ]
            body["target"] = "response"
        if self.policy_id is not None:
            body["policy_id"] = self.policy_id
        if self.policy is not None:
            body["policy"] = self.policy
        return body


def stable_id(source: str, *parts: str | None) -> str:
    """A content-derived id: the same item read twice gets the same id (needed for resuming)."""
    digest = hashlib.sha256()
    for part in (source, *parts):
        digest.update((part or "").encode("utf-8"))
        digest.update(b"\x00")
    return f"{source}-{digest.hexdigest()[:16]}"


def load_jsonl(path: Path) -> list[EvalItem]:
    """Read items; a bad line fails with its line number. Ids must be unique."""
    items: list[EvalItem] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = EvalItem.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: {exc}") from exc
            if item.id in seen:
                raise ValueError(f"{path}:{number}: duplicate id {item.id!r}")
            seen.add(item.id)
            items.append(item)
    return items


def dump_line(item: EvalItem) -> str:
    return json.dumps(item.model_dump(exclude_none=True, exclude_defaults=True), ensure_ascii=False)


def save_jsonl(items: Iterable[EvalItem], path: Path) -> int:
    """Write items, one JSON object a line (atomically: a temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for item in items:
            handle.write(dump_line(item) + "\n")
            count += 1
    tmp.replace(path)
    return count


def iter_sources(items: Iterable[EvalItem]) -> Iterator[str]:
    seen: set[str] = set()
    for item in items:
        if item.source not in seen:
            seen.add(item.source)
            yield item.source
