"""Build RSafe's guided-reasoning prompt, with hostile text kept inside its slot.

The prompt is ONE user message (no system message), worded as the checkpoint was trained:
preamble (prompt checks only), task line, policy block, conversation block, closing instruction.

Neutralising (applied to content AND to policy text; idempotent):
  1. Unicode NFKC normalisation, removal of invisible characters (format, zero-width, tags,
     variation selectors) and one kind of line break (`\n`), so look-alikes such as fullwidth
     `＜ＥＮＤ`, `<EN\u200bD` or a role line after U+2028 collapse to what they imitate and are
     caught below.
  2. `<` that opens a block marker, a think tag or a chat-template token
     (`<BEGIN …`, `<END …`, `<think>`, `</think>`, `<|im_start|>`…) becomes `‹` (U+2039).
  3. The backslash of `\\boxed` becomes `⧵` (U+29F5), so content cannot write the answer format.
  4. A role label at the start of a line (`User:`, `Agent:`, `Assistant:`, `System:`) gets a
     fullwidth colon `：`, so content cannot fake a turn of the conversation.
Steps 2-4 find what they replace on a copy with look-alike letters folded to Latin (Cyrillic `Е`,
Greek `Ο`, Armenian `օ`…, see `_LOOKALIKES`), so `<ЕND CONVERSATION>` or `Аgent:` are caught too;
only the `<`, `\\` or `:` found are replaced, the look-alike letters themselves are kept.
Everything else is passed through unchanged. The verdict is read only from the model's own
output (see `verdict.py`), so neutralising is defence in depth against steering the model.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from .turns import Role, Target, Turn

# Bump whenever the rendered prompt changes: it is part of every cache key.
TEMPLATE_VERSION = "rsafe-v3"

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

# Invisible code points (Unicode category Cf, variation selectors, the combining grapheme joiner,
# tag characters): they could split a marker so that it no longer looks like one to a regex.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb\U000110bd"
    "\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f\U000e0100-\U000e01ef]"
)
# Every character Python (and a model's tokenizer) may take for a line break becomes "\n", so a
# fake role line cannot hide behind "\r", "\v", U+2028 and the like.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_MARKER_OPEN = re.compile(r"<(?=\s*/?\s*(?:begin|end|think)\b|\|)", re.IGNORECASE)
_BOXED = re.compile(r"\\(?=\s*boxed)", re.IGNORECASE)
_ROLE_LINE = re.compile(r"^([ \t]*(?:user|agent|assistant|system)[ \t]*):", re.IGNORECASE | re.M)

# Letters (and colons, backslashes) of other scripts that look like the Latin ones in the markers
# and role labels, from Unicode's confusables data (not exhaustive). One code point each way, so a
# match in the folded copy is at the same position in the text.
_LOOKALIKES = str.maketrans(
    "аɑαьсϲԁеҽɡցһհіιıɩјκкոоοօрρѕυսνѵхχу"  # Cyrillic, Greek, Armenian, Latin variants ...
    "АΑВΒСϹᎠЕΕԌНΗІΙӀЈКΚМΜΝОΟՕРΡЅТΤՍХΧΥҮΖ"
    "∶꞉˸։׃∖⧹",
    "aaabccdeegghhiiiijkknoooppsuuvvxxy"  # ... and, position by position, what each imitates
    "AABBCCDEEGHHIIIJKKMMNOOOPPSTTUXXYYZ"
    ":::::\\\\",
)  # fmt: skip


def neutralise(text: str) -> str:
    """Make `text` unable to close its slot, open a marker or write an answer (see module doc)."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = _LINE_BREAKS.sub("\n", text)
    folded = text.translate(_LOOKALIKES)
    edits = [(match.start(), "\u2039") for match in _MARKER_OPEN.finditer(folded)]
    edits += [(match.start(), "\u29f5") for match in _BOXED.finditer(folded)]
    edits += [(match.end() - 1, "\uff1a") for match in _ROLE_LINE.finditer(folded)]
    if not edits:
        return text
    characters = list(text)
    for position, replacement in edits:
        characters[position] = replacement
    return "".join(characters)


@lru_cache(maxsize=256)
def _policy_block(policy_text: str) -> str:
    # Named policies repeat on every request: neutralise each text once, not per request.
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
