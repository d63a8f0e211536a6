"""Stage-1 completions (policy-guided reasoning) for the SFT warm-up, from a pluggable source.

Every source returns the completion in the exact serving format, `<think>…</think>\\n\\boxed{label}`
(what `rsafe_core.prompt.answer_regex` accepts: no `<`/`>` inside the reasoning), or None when it
has no acceptable completion for an item (the item is then left out of stage 1).

- `TemplateReasoning`: offline and deterministic. One or two sentences that name the policy's
  categories: for an unsafe item the category whose name/description best overlaps the text,
  for a safe one the statement that no category applies. Enough to teach the FORMAT (what GRPO
  needs to get any signal, see shared/design/training-cpu.md); the judging comes from GRPO.
- `TeacherReasoning`: a stronger model behind an OpenAI-compatible endpoint (e.g. vLLM serving a
  bigger instruct model), prompted with the same messages; rejection sampling keeps only answers
  in the right format with the gold verdict, retried a few times, else the fallback source.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from rsafe_core.policy import Category, Policy
from rsafe_core.verdict import Verdict, parse_answer

from rsafe_train.data import UNSAFE, Example
from rsafe_train.reward import score

_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_UNSAFE_FOR_ANSWER = re.compile(r"[<>{}\\]")
_STOPWORDS_TEXT = (
    "that this with from into about their there which would could should have been other than "
    "such them they what when where while without people person content instructions"
)
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


class ReasoningSource(Protocol):
    def completion(
        self, example: Example, messages: list[dict[str, str]], policy: Policy
    ) -> str | None:
        """The stage-1 target for one item, or None to leave the item out."""
        ...


def format_completion(reasoning: str, label: str) -> str:
    """The canonical answer: `<think>reasoning</think>` then the boxed label on the next line."""
    reasoning = " ".join(_UNSAFE_FOR_ANSWER.sub(" ", reasoning).split())
    return f"<think>{reasoning}</think>\n\\boxed{{{label}}}"


def _stems(text: str) -> set[str]:
    return {word[:5] for word in _WORD.findall(text.lower()) if word not in _STOPWORDS}


def best_category(text: str, categories: Iterable[Category]) -> Category | None:
    """The category whose name/description share most word stems with `text` (None: none)."""
    words = _stems(text)
    best: tuple[int, Category] | None = None
    for category in categories:
        overlap = len(words & _stems(f"{category.name} {category.description}"))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, category)
    return None if best is None else best[1]


def _pick(options: tuple[str, ...], key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return options[digest[0] % len(options)]


def _id_range(policy: Policy) -> str:
    ids = [category.id for category in policy.categories]
    if not ids:
        return "the policy's categories"
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 2 else " and ".join(ids)


_SAFE_OPENERS = (
    "{who} {verb} an ordinary request with no harmful intent.",
    "{who} {verb} nothing that seeks or enables harm.",
    "Reading {whose} text against the policy, it stays within acceptable use.",
)
_UNSAFE_OPENERS = (
    "{who} {verb} content that the policy prohibits.",
    "{who} {verb} material that could enable or promote harm.",
    "Checked against the policy, {whose} text crosses a prohibited line.",
)


@dataclass
class TemplateReasoning:
    """Short, deterministic policy-guided reasoning from the policy's categories and the label."""

    max_chars: int = 600

    def completion(self, example: Example, messages: list[dict[str, str]], policy: Policy) -> str:
        response_level = example.response is not None
        who, whose = (
            ("The agent's reply", "the agent's") if response_level else ("The user", "the user's")
        )
        verb = "gives" if response_level else "asks for"
        judged = example.response if response_level else example.prompt
        key = f"{example.source}\x00{example.prompt}\x00{example.response}"
        if example.label == UNSAFE:
            opener = _pick(_UNSAFE_OPENERS, key).format(who=who, whose=whose, verb=verb)
            category = best_category(judged or "", policy.categories)
            if category is not None:
                detail = f"It falls under {category.id} {category.name}, so it is unsafe."
            else:
                categories = _id_range(policy)
                detail = (
                    f"It violates the unsafe content categories ({categories}), so it is unsafe."
                )
        else:
            opener = _pick(_SAFE_OPENERS, key).format(who=who, whose=whose, verb=verb)
            detail = (
                f"It does not fall under any of the categories {_id_range(policy)}, so it is safe."
            )
        reasoning = f"{opener} {detail}"[: self.max_chars]
        return format_completion(reasoning, example.label)


@dataclass
class TeacherReasoning:
    """A stronger model behind an OpenAI-compatible `/v1/chat/completions`; rejection sampling."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1
    model: str
    api_key: str | None = None
    temperature: float = 0.7
    top_p: float = 0.8
    max_tokens: int = 1024
    attempts: int = 4
    timeout_s: float = 120.0
    max_reasoning_chars: int = 2000
    fallback: ReasoningSource | None = None
    stats: dict[str, int] = field(
        default_factory=lambda: {"accepted": 0, "rejected": 0, "fallback": 0}
    )

    def _request(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": messages,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "max_tokens": self.max_tokens,
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/chat/completions",
            data=body,
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
            payload = json.load(reply)
        message = payload["choices"][0]["message"]
        content = message.get("content") or ""
        # vLLM with a reasoning parser returns the thought separately.
        thought = message.get("reasoning_content") or message.get("reasoning")
        if thought and "<think>" not in content:
            content = f"<think>{thought}</think>{content}"
        return str(content)

    def completion(
        self, example: Example, messages: list[dict[str, str]], policy: Policy
    ) -> str | None:
        for _ in range(self.attempts):
            try:
                text = self._request(messages)
            except (urllib.error.URLError, TimeoutError, KeyError, IndexError, ValueError):
                continue
            parsed = parse_answer(text)
            correct = score(text, example.label).accuracy == 1.0
            if (
                correct
                and parsed.verdict is Verdict(example.label)
                and parsed.reasoning
                and len(parsed.reasoning) <= self.max_reasoning_chars
            ):
                self.stats["accepted"] += 1
                return format_completion(parsed.reasoning, example.label)
            self.stats["rejected"] += 1
        if self.fallback is None:
            return None
        self.stats["fallback"] += 1
        return self.fallback.completion(example, messages, policy)
