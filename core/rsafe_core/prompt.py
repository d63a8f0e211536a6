"""Build RSafe's guided-reasoning prompt, with hostile text kept inside its slot.

The prompt is ONE user message (no system message), worded as the checkpoint was trained:
preamble (prompt checks only), task line, policy block, conversation block, closing instruction.
Content and policy text go through `neutralise.neutralise` first (see there): it cannot close its
slot, open a marker, write an answer or fake a turn. The verdict is read only from the model's own
output (see `verdict.py`), so neutralising is defence in depth against steering the model.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .neutralise import neutralise
from .turns import Role, Target, Turn

# Bump whenever the rendered prompt changes: it is part of every cache key.
TEMPLATE_VERSION = "rsafe-v4"

BEGIN_POLICY = "<BEGIN UNSAFE CONTENT CATEGORIES>"
END_POLICY = "<END UNSAFE CONTENT CATEGORIES>"
BEGIN_CONVERSATION = "<BEGIN CONVERSATION>"
END_CONVERSATION = "<END CONVERSATION>"
REAL_MARKERS = (BEGIN_POLICY, END_POLICY, BEGIN_CONVERSATION, END_CONVERSATION)

PROMPT_PREAMBLE = (
    "You are a policy expert trying to help determine whether a user prompt is in violation "
    "of the defined safety policies."
)
PROMPT_TASK = (
    "Task: Check if there is unsafe content in 'User' messages in conversation according to "
    "the safety policy with the below categories."
)
RESPONSE_TASK = (
    "Task: Check if there is unsafe content in 'Agent' messages in conversation according to "
    "the safety policy with the below categories."
)
CLOSING = (
    "You FIRST go through a step-by-step reasoning process and then provide the final answer. "
    "The thinking process MUST BE enclosed within <think> </think> tags. "
    "Then put your final answer, 'safe' or 'unsafe', inside \\boxed{}."
)
# Appended after the trained instruction, only when the policy lists categories. The verdict stays
# the LAST \boxed{} of the answer, so it is parsed exactly as for the trained format.
CATEGORIES_REQUEST = (
    "If your answer is unsafe, then write 'Categories:' on a new line after the box, followed by "
    "the ids of the violated categories, separated by commas."
)
CATEGORIES_LABEL = "Categories:"


@lru_cache(maxsize=256)
def _policy_block(policy_text: str) -> str:
    # Named policies repeat on every request: neutralise each text once, not per request.
    # The role-label rule already treats every space and control as blank, so stripping after
    # neutralising cannot bring a label to the start of the block's first line.
    return f"{BEGIN_POLICY}\n{neutralise(policy_text).strip()}\n{END_POLICY}"


def _conversation_lines(turns: list[Turn]) -> str:
    # System turns are the calling app's own instructions, not content under judgement.
    labels = {Role.USER: "User", Role.ASSISTANT: "Agent"}
    return "\n".join(
        f"{labels[turn.role]}: {neutralise(turn.content)}" for turn in turns if turn.role in labels
    )


def render_prompt(
    turns: list[Turn], policy_text: str, target: Target, *, ask_categories: bool = False
) -> str:
    """The single user message sent to the model for a prompt or response check.

    `turns` must already end where judgement ends (the last user turn for a prompt check,
    the assistant's reply for a response check); `turns.resolve_turns` guarantees that.
    """
    parts: list[str] = []
    if target is Target.PROMPT:
        parts.append(PROMPT_PREAMBLE)
        parts.append(PROMPT_TASK)
    else:
        parts.append(RESPONSE_TASK)
    parts.append(_policy_block(policy_text))
    parts.append(f"{BEGIN_CONVERSATION}\n{_conversation_lines(turns)}\n{END_CONVERSATION}")
    parts.append(f"{CLOSING} {CATEGORIES_REQUEST}" if ask_categories else CLOSING)
    return "\n\n".join(parts)


def render_messages(
    turns: list[Turn], policy_text: str, target: Target, *, ask_categories: bool = False
) -> list[dict[str, str]]:
    """The chat messages for `/v1/chat/completions`: one user message, no system message."""
    content = render_prompt(turns, policy_text, target, ask_categories=ask_categories)
    return [{"role": "user", "content": content}]


def answer_regex(reasoning_max_chars: int, category_ids: tuple[str, ...] = ()) -> str:
    """The constrained-decoding pattern: bounded reasoning, then exactly one boxed verdict.

    With category ids, an `unsafe` verdict must be followed by `Categories: ID, ID…` drawn from
    them (as many ids as the policy has; the parser drops repeats). Bounded quantifiers matter:
    an unbounded one lets a weak model run into max_tokens.
    """
    head = rf"<think>[^<>]{{1,{reasoning_max_chars}}}</think>[ \n]{{0,2}}"
    if not category_ids:
        return head + r"\\boxed\{(safe|unsafe)\}"
    one = "(" + "|".join(re.escape(i) for i in sorted(category_ids, key=len, reverse=True)) + ")"
    more = f"(, {one}){{0,{len(category_ids) - 1}}}"
    return head + rf"(\\boxed\{{safe\}}|\\boxed\{{unsafe\}}\n{CATEGORIES_LABEL} {one}{more})"
