"""Turn a request's `input` and `target` into the turns the prompt judges, enforcing the limits."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidRequest
from .prompt import Role, Target, Turn
from .protocol import Message


@dataclass(frozen=True, slots=True)
class InputLimits:
    max_text_chars: int
    max_messages: int


def _check_text(text: str, param: str, limits: InputLimits) -> None:
    if not text.strip():
        raise InvalidRequest(f"'{param}' must not be empty", param=param)
    if len(text) > limits.max_text_chars:
        raise InvalidRequest(
            f"'{param}' is longer than {limits.max_text_chars} characters", param=param
        )
    check_encodable(text, param)


def check_encodable(text: str, param: str) -> None:
    """Refuse NUL characters and lone surrogates (JSON allows `\\ud800`; UTF-8 cannot hold it)."""
    if "\x00" in text:
        raise InvalidRequest(f"'{param}' must not contain NUL characters", param=param)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"'{param}' contains an unpaired surrogate (not valid Unicode text)", param=param
        ) from None


def resolve_turns(
    data: str | list[Message], target: Target | None, limits: InputLimits
) -> tuple[list[Turn], Target]:
    """The turns up to the one under judgement, and the effective target.

    - a string is one user turn, judged as a prompt;
    - a conversation is judged up to its last user turn (prompt) or its final assistant turn
      (response); system turns are accepted and left out of the judged conversation.
    """
    if isinstance(data, str):
        _check_text(data, "input", limits)
        if target is Target.RESPONSE:
            raise InvalidRequest(
                "a response check needs a conversation that ends with the assistant's reply",
                param="target",
            )
        return [Turn(Role.USER, data)], Target.PROMPT

    if not data:
        raise InvalidRequest("'input' must not be an empty conversation", param="input")
    if len(data) > limits.max_messages:
        raise InvalidRequest(f"'input' has more than {limits.max_messages} messages", param="input")
    total = 0
    for index, message in enumerate(data):
        _check_text(message.content, f"input[{index}].content", limits)
        total += len(message.content)
    if total > limits.max_text_chars:
        raise InvalidRequest(
            f"'input' is longer than {limits.max_text_chars} characters in total", param="input"
        )

    turns = [Turn(message.role, message.content) for message in data]
    judged = [turn for turn in turns if turn.role is not Role.SYSTEM]
    if not any(turn.role is Role.USER for turn in judged):
        raise InvalidRequest("'input' must contain a user message", param="input")
    if target is None:
        target = Target.RESPONSE if judged[-1].role is Role.ASSISTANT else Target.PROMPT

    if target is Target.RESPONSE:
        if judged[-1].role is not Role.ASSISTANT:
            raise InvalidRequest(
                "a response check needs the conversation to end with an assistant message",
                param="target",
            )
        return judged, target
    last_user = max(i for i, turn in enumerate(judged) if turn.role is Role.USER)
    return judged[: last_user + 1], target
