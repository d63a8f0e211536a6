"""Turns and targets: a request's `input` and `target` as the turns a guard judges, in limits.

The turns hold the text as judged (`neutralise.normalise`: NFKC, hidden characters made visible),
and the length limits apply to that text: NFKC can make a text many times longer (U+FDFA alone
becomes 18 characters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .errors import InvalidInput
from .neutralise import HiddenKind, Normalised, TextTooLong, normalise


class Target(StrEnum):
    PROMPT = "prompt"
    RESPONSE = "response"


class Role(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Turn:
    role: Role
    content: str


class MessageLike(Protocol):
    """What a caller's message must offer (the gateway's wire `Message`, or a `Turn`)."""

    @property
    def role(self) -> Role: ...

    @property
    def content(self) -> str: ...


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_text_chars: int
    max_messages: int


@dataclass(frozen=True, slots=True)
class JudgedInput:
    turns: list[Turn]
    target: Target
    hidden: frozenset[HiddenKind]  # invisible content found (and made visible) in the turns


def check_text(text: str, param: str, max_chars: int) -> None:
    """InvalidInput naming `param` if `text` is empty, too long or not Unicode text."""
    if not text.strip():
        raise InvalidInput(f"'{param}' must not be empty", param=param)
    if len(text) > max_chars:
        raise InvalidInput(f"'{param}' is longer than {max_chars} characters", param=param)
    check_encodable(text, param)


def judged_text(text: str, param: str, max_chars: int) -> Normalised:
    """`text` (already `check_text`ed) as judged, or InvalidInput if that is too long."""
    try:
        return normalise(text, max_chars)
    except TextTooLong:
        raise InvalidInput(
            f"'{param}' is longer than {max_chars} characters once normalised as judged "
            "(Unicode NFKC expands some characters; invisible ones are shown as code points)",
            param=param,
        ) from None


def check_encodable(text: str, param: str) -> None:
    """Refuse NUL characters and lone surrogates (JSON allows `\\ud800`; UTF-8 cannot hold it)."""
    if "\x00" in text:
        raise InvalidInput(f"'{param}' must not contain NUL characters", param=param)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"'{param}' contains an unpaired surrogate (not valid Unicode text)", param=param
        ) from None


def resolve_turns(
    data: str | Sequence[MessageLike], target: Target | None, limits: InputLimits
) -> tuple[list[Turn], Target]:
    """`resolve_input` without the report of hidden content."""
    judged = resolve_input(data, target, limits)
    return judged.turns, judged.target


def resolve_input(
    data: str | Sequence[MessageLike], target: Target | None, limits: InputLimits
) -> JudgedInput:
    """The turns up to the one under judgement (text as judged), and the effective target.

    - a string is one user turn, judged as a prompt;
    - a conversation is judged up to its last user turn (prompt) or its final assistant turn
      (response); system turns are accepted and left out of the judged conversation.
    """
    if isinstance(data, str):
        check_text(data, "input", limits.max_text_chars)
        text = judged_text(data, "input", limits.max_text_chars)
        if target is Target.RESPONSE:
            raise InvalidInput(
                "a response check needs a conversation that ends with the assistant's reply",
                param="target",
            )
        return JudgedInput([Turn(Role.USER, text.text)], Target.PROMPT, text.hidden)

    if not data:
        raise InvalidInput("'input' must not be an empty conversation", param="input")
    if len(data) > limits.max_messages:
        raise InvalidInput(f"'input' has more than {limits.max_messages} messages", param="input")
    too_long = InvalidInput(
        f"'input' is longer than {limits.max_text_chars} characters in total", param="input"
    )
    for index, message in enumerate(data):
        check_text(message.content, f"input[{index}].content", limits.max_text_chars)
    if sum(len(message.content) for message in data) > limits.max_text_chars:
        raise too_long  # before any normalising: the work stays bounded by the limit
    texts = [
        judged_text(message.content, f"input[{index}].content", limits.max_text_chars)
        for index, message in enumerate(data)
    ]
    if sum(len(text.text) for text in texts) > limits.max_text_chars:
        raise too_long

    turns = [Turn(message.role, text.text) for message, text in zip(data, texts, strict=True)]
    # System turns are not judged, so what they hide is not reported either.
    hidden = frozenset().union(
        *(
            text.hidden
            for turn, text in zip(turns, texts, strict=True)
            if turn.role is not Role.SYSTEM
        )
    )
    judged = [turn for turn in turns if turn.role is not Role.SYSTEM]
    if not any(turn.role is Role.USER for turn in judged):
        raise InvalidInput("'input' must contain a user message", param="input")
    if target is None:
        target = Target.RESPONSE if judged[-1].role is Role.ASSISTANT else Target.PROMPT

    if target is Target.RESPONSE:
        if judged[-1].role is not Role.ASSISTANT:
            raise InvalidInput(
                "a response check needs the conversation to end with an assistant message",
                param="target",
            )
        return JudgedInput(judged, target, hidden)
    last_user = max(i for i, turn in enumerate(judged) if turn.role is Role.USER)
    return JudgedInput(judged[: last_user + 1], target, hidden)
