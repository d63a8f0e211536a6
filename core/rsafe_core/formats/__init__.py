"""Guard formats by model family; `guard_format(name)` is how the service picks one."""

from __future__ import annotations

from collections.abc import Callable

from .base import GuardAnswer, GuardFormat, ModelOutput
from .rsafe import RSafeFormat

FORMATS: dict[str, Callable[[], GuardFormat]] = {"rsafe": RSafeFormat}


def guard_format(family: str) -> GuardFormat:
    """The format of `family`; ValueError naming the known ones otherwise."""
    try:
        return FORMATS[family]()
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        raise ValueError(f"unknown model family {family!r} (known: {known})") from None


__all__ = ["FORMATS", "GuardAnswer", "GuardFormat", "ModelOutput", "RSafeFormat", "guard_format"]
