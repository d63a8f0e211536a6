"""The one exception the core raises for a caller's bad input; the HTTP edge makes it a 400."""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input the guard cannot judge; `param` names the offending field (`input[1].content`)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
