"""Guard formats by model family; `guard_format(name, options)` is how the service picks one."""

from __future__ import annotations

from collections.abc import Callable

from .base import FormatOptions, GuardAnswer, GuardFormat, ModelOutput, ReasoningEffort
from .gpt_oss_safeguard import GptOssSafeguardFormat
from .qwen3guard import Qwen3GuardFormat
from .rsafe import RSafeFormat

FORMATS: dict[str, Callable[[FormatOptions | None], GuardFormat]] = {
    "rsafe": RSafeFormat,
    "gpt-oss-safeguard": GptOssSafeguardFormat,
    "qwen3guard": Qwen3GuardFormat,
}


def guard_format(family: str, options: FormatOptions | None = None) -> GuardFormat:
    """The format of `family`; ValueError naming the known ones otherwise."""
    try:
        make = FORMATS[family]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"unknown model family {family!r} (known: {known})") from None
    return make(options)


__all__ = [
    "FORMATS",
    "FormatOptions",
    "GptOssSafeguardFormat",
    "GuardAnswer",
    "GuardFormat",
    "ModelOutput",
    "Qwen3GuardFormat",
    "RSafeFormat",
    "ReasoningEffort",
    "guard_format",
]
