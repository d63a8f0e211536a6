"""Turns and targets: a request's `input` and `target` as the turns a guard judges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .errors import InvalidInput


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


def _check_text(text: str, param: str, limits: InputLimits) -> None:
    if not text.strip():
        raise InvalidInput(f"'{param}' must not be empty", param=param)
    if len(text) > limits.max_text_chars:
        raise InvalidInput(
            f"'{param}' is longer than {limits.max_text_chars} characters", param=param
        )
    check_encodable(text, param)


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
    """The turns up to the one under judgement, and the effective target.

    - a string is one user turn, judged as a prompt;
    - a conversation is judged up to its last user turn (prompt) or its final assistant turn
      (response); system turns are accepted and left out of the judged conversation.
    """
    if isinstance(data, str):
        _check_text(data, "input", limits)
        if target is Target.RESPONSE:
            raise InvalidInput(
                "a response check needs a conversation that ends with the assistant's reply",
                param="target",
            )
        return [Turn(Role.USER, data)], Target.PROMPT

    if not data:
        raise InvalidInput("'input' must not be an empty conversation", param="input")
    if len(data) > limits.max_messages:
        raise InvalidInput(f"'input' has more than {limits.max_messages} messages", param="input")
    total = 0
    for index, message in enumerate(data):
        _check_text(message.content, f"input[{index}].content", limits)
        total += len(message.content)
    if total > limits.max_text_chars:
        raise InvalidInput(
            f"'input' is longer than {limits.max_text_chars} characters in total", param="input"
        )

    turns = [Turn(message.role, message.content) for message in data]
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
        return judged, target
    last_user = max(i for i, turn in enumerate(judged) if turn.role is Role.USER)
    return judged[: last_user + 1], target
