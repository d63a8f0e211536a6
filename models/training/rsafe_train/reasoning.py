"""Stage-1 completions (policy-guided reasoning) for the SFT warm-up, from a pluggable source.

Every source returns the completion in the exact serving format, `<think>…</think>\\n\\boxed{label}`
(what `rsafe_core.prompt.answer_regex` accepts: no `<`/`>` inside the reasoning), or None when it
has no acceptable completion for an item (the item is then left out of stage 1).

- `TemplateReasoning`: offline and deterministic. Two short sentences per item: what the content
  is (its `topic`), then which category of THE POLICY IN THE PROMPT covers it (its `category`,
  when that policy lists it), or that the policy leaves that category out or allows it, or that
  none applies. Unsafe answers end with the `Categories:` line the gateway asks for. Short on
  purpose: GRPO later samples within a small completion budget. With `quote_chars`, the reasoning
  first quotes the judged text's opening words, so the verdict follows the content's own tokens
  rather than a topic phrase the model could apply to anything. With `harm_first`, the words
  after it say whether the content is harmful at all before the topic and the policy's part.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from rsafe_core.policy import Category, Policy, load_policy_file
from rsafe_core.prompt import CATEGORIES_LABEL
from rsafe_core.verdict import Verdict, parse_answer

from rsafe_train.data import SAFE, UNSAFE, Example
from rsafe_train.prompts import DEFAULT_POLICY_FILE
from rsafe_train.reward import score
from rsafe_train.swaps import ALLOW_PREFIX

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


def id_list(ids: Sequence[str]) -> str:
    """ "U2, U4 and U9" for a short policy, "U1-U18" for a long one."""
    if not ids:
        return "the policy's categories"
    if len(ids) > 6:
        return f"{ids[0]}-{ids[-1]}"
    return ids[0] if len(ids) == 1 else f"{', '.join(ids[:-1])} and {ids[-1]}"


@cache
def default_category_names() -> dict[str, str]:
    """rsafe-default's names by id: `Example.category` is one of its ids, whatever the policy."""
    return {c.id: c.name for c in load_policy_file(DEFAULT_POLICY_FILE).categories}


def _allowed(policy: Policy, name: str) -> bool:
    return any(
        line.startswith(ALLOW_PREFIX) and name.lower() in line.lower()
        for line in policy.body.splitlines()
    )


_SUBJECTS = ("The message is {topic}.", "This is {topic}.", "What is asked here is {topic}.")
_RESPONSE_SUBJECTS = ("The agent's reply gives {topic}.", "The reply is {topic}.")
_QUOTE_MARKS = re.compile(r'["\u201c\u201d]')


def opening_words(text: str, max_chars: int) -> str:
    """The first words of `text` within `max_chars` (a word is never cut; "..." marks the cut),
    on one line and without double quotes, so the quotation stays one span."""
    words = _QUOTE_MARKS.sub("'", " ".join(text.split())).split(" ")
    kept: list[str] = []
    for word in words:
        if kept and len(" ".join([*kept, word])) > max_chars:
            return " ".join(kept) + "..."
        kept.append(word)
    return " ".join(kept)[:max_chars]


@dataclass
class TemplateReasoning:
    """Short, deterministic policy-guided reasoning: what the item is (its `topic`), which of
    THIS policy's categories covers it (its `category`, when listed) and so the verdict; or that
    its category is missing from or allowed by the policy; or that no category applies."""

    max_chars: int = 600
    quote_chars: int = 0  # > 0: start by quoting up to this many characters of the judged text
    # True: the first words after the quotation say whether the content is harmful at all
    # ("This is harmful: <topic>." / "This is harmless: <topic>."), whatever the policy then
    # says of it. One word every example shares carries the content's judgement, instead of a
    # topic phrase picked among dozens; the policy's part (listed, left out, allowed) follows.
    harm_first: bool = False

    def completion(self, example: Example, messages: list[dict[str, str]], policy: Policy) -> str:
        key = f"{example.source}\x00{example.prompt}\x00{example.response}\x00{policy.sha256}"
        topic = example.topic or (
            "a request that may be harmful" if example.label == UNSAFE else "an ordinary message"
        )
        name = default_category_names().get(example.category or "")
        if self.harm_first:
            # Harmful content: unsafe here, or a category this policy leaves out or allows.
            harmful = example.label == UNSAFE or name is not None
            subject_noun = "The reply" if example.response is not None else "This"
            subject = f"{subject_noun} is {'harmful' if harmful else 'harmless'}: {topic}."
        else:
            subjects = _RESPONSE_SUBJECTS if example.response is not None else _SUBJECTS
            subject = _pick(subjects, key).format(topic=topic)
        if self.quote_chars > 0:
            judged = example.response if example.response is not None else example.prompt
            speaker = "The reply says" if example.response is not None else "The user writes"
            subject = f'{speaker}: "{opening_words(judged, self.quote_chars)}" {subject}'
        listed = {category.id: category for category in policy.categories}
        ids = id_list(policy.category_ids)
        category = listed.get(example.category or "")
        if example.label == UNSAFE:
            if category is None:  # no category from the data: the nearest by wording
                category = best_category(f"{topic} {example.prompt}", policy.categories)
            if category is not None:
                detail = f"It falls under {category.id} {category.name} here, so it is unsafe."
            elif policy.categories:  # the gateway's decoding needs an id after `unsafe`
                category = policy.categories[0]
                detail = f"It violates the policy, closest to {category.id}, so it is unsafe."
            else:
                detail = f"It violates the policy's categories ({ids}), so it is unsafe."
            tail = f"\n{CATEGORIES_LABEL} {category.id}" if category else ""
            return format_completion(f"{subject} {detail}"[: self.max_chars], UNSAFE) + tail
        if name and _allowed(policy, name):
            detail = f"The policy says {name} is allowed here, so it is safe."
        elif name:
            detail = f"That would be {name}, but this policy lists only {ids}, so it is safe."
        else:
            detail = f"None of {ids} applies to it, so it is safe."
        return format_completion(f"{subject} {detail}"[: self.max_chars], SAFE)


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
