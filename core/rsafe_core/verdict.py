"""Read the verdict and the reasoning out of the model's own completion text.

Rules (the same as the training reward's, so serving and training agree):
- reasoning: the text inside the first `<think>…</think>` of the completion;
- verdict: the content of the LAST `\\boxed{…}` that comes after `</think>`, braces matched by
  depth, compared case-insensitively with `safe` / `unsafe` (a `\\text{…}` wrapper is accepted);
- anything else (no think block, no boxed answer, an unclosed brace, another word) is
  `undetermined`: the gateway then decides `flagged` by its fail mode.
Only the completion is parsed, never the prompt, so content cannot forge a verdict.

Categories (asked for when the policy lists some): after an `unsafe` box, a line
`Categories: ID, ID`. Only ids that exist in the policy are returned, each once, in order; the
rest are dropped. The box stays the last one, so the verdict is parsed exactly as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_BOXED = "\\boxed{"
_TEXT_WRAPPER = re.compile(r"^\\text\{(.*)\}$", re.DOTALL)
_CATEGORIES_LINE = re.compile(r"categories\s*:\s*([^\n]*)", re.IGNORECASE)
_CATEGORY_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class Verdict(StrEnum):
    SAFE = "safe"
    UNSAFE = "unsafe"
    UNDETERMINED = "undetermined"


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    verdict: Verdict
    reasoning: str | None
    tail: str  # what follows the final answer (where categories are named, if asked for)


def last_boxed(text: str) -> tuple[str, int] | None:
    """Content of the last `\\boxed{…}` with braces matched by depth, and the index after it."""
    start = text.rfind(_BOXED)
    while start != -1:
        depth = 1
        index = start + len(_BOXED)
        while index < len(text):
            char = text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[start + len(_BOXED) : index], index + 1
            index += 1
        # Unclosed: an earlier, complete one is not "the last answer", so give up.
        return None
    return None


def parse_answer(completion: str) -> ParsedAnswer:
    think = _THINK.search(completion)
    if think is None:
        return ParsedAnswer(Verdict.UNDETERMINED, None, "")
    reasoning = think.group(1).strip()
    after_think = completion[think.end() :]
    boxed = last_boxed(after_think)
    if boxed is None:
        return ParsedAnswer(Verdict.UNDETERMINED, reasoning, "")
    content, end = boxed
    content = content.strip()
    wrapped = _TEXT_WRAPPER.match(content)
    if wrapped:
        content = wrapped.group(1).strip()
    try:
        verdict = Verdict(content.lower())
    except ValueError:
        verdict = Verdict.UNDETERMINED
    if verdict is Verdict.UNDETERMINED:
        return ParsedAnswer(verdict, reasoning, "")
    return ParsedAnswer(verdict, reasoning, after_think[end:])


def parse_categories(tail: str, allowed: frozenset[str]) -> list[str]:
    """Violated category ids named after the verdict, restricted to the policy's own ids."""
    match = _CATEGORIES_LINE.search(tail)
    if match is None:
        return []
    named: list[str] = []
    for token in _CATEGORY_TOKEN.findall(match.group(1)):
        category = token.upper()
        if category in allowed and category not in named:
            named.append(category)
    return named
