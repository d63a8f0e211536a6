"""Cut a growing reply into windows for response checks. Pure: no I/O, no clock.

A window is the new text one check judges (`start`..`end`, offsets into the whole reply) plus a
look-back: up to `lookback` characters before it, given to the guard as context so that a
sentence split across two windows is judged whole in the second one. The judged text is
`text[context_start:end]`.

Where a window ends (its size is `size` characters at most):
- at the FIRST sentence end (`.`, `!`, `?`, `…` followed by whitespace, the CJK full stops, or
  a line break) at least `size // 2` characters in, so a window closes (and its check starts)
  as soon as a whole sentence is there, and windows are not tiny. The first window needs only
  FIRST_WINDOW_MIN_CHARS: under held release the client's first token waits for it, so it is
  one sentence rather than half a window (one more check per reply);
- with no sentence end by `size` characters: at the last whitespace after half the size, else
  exactly at `size` (a reply with no spaces);
- when the reply is over: whatever is left is the last window.
A sentence end is recognised only once the character after it has arrived (`3.` may be `3.14`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# The end of a sentence: punctuation, then closing quotes/brackets, then (looked ahead) a space.
_CLOSERS = "\"')\\]\u00bb\u2019\u201d\u300d\u300f\uff09"  # quotes and brackets, Latin and CJK
_SENTENCE_END = re.compile(
    f"[.!?\u2026]+[{_CLOSERS}]*(?=\\s)|[\u3002\uff01\uff1f]+[{_CLOSERS}]*|\n"
)
_WHITESPACE = re.compile(r"\s")
FIRST_WINDOW_MIN_CHARS = 24  # "Sure." or "1." alone are not worth a check of their own


@dataclass(frozen=True, slots=True)
class Window:
    index: int
    start: int  # offset of the first character this window judges as new
    end: int  # offset after its last character: released once it is judged safe
    context_start: int  # offset where the look-back begins (== start: no look-back)
    text: str  # the judged text: look-back and window, text[context_start:end]

    @property
    def new_chars(self) -> int:
        return self.end - self.start


def cut_point(
    text: str, start: int, size: int, final: bool, minimum: int | None = None
) -> int | None:
    """Where the window that begins at `start` ends, or None until more text has arrived.
    `minimum` (default and at most: half the size) is the shortest window cut at a sentence end."""
    available = len(text) - start
    if available <= 0:
        return None
    minimum = max(1, min(size // 2, minimum if minimum is not None else size))
    if available >= minimum:
        # `\n` or punctuation ending at or after `minimum`, within `size`: the first one wins.
        scan_from = start + minimum - 1
        for match in _SENTENCE_END.finditer(text, scan_from, start + size + 1):
            if start + minimum <= match.end() <= start + size:
                return match.end()
    if available >= size:
        limit = start + size
        last_space = None
        for match in _WHITESPACE.finditer(text, start + minimum, limit):
            last_space = match.end()
        return last_space if last_space is not None else limit
    return len(text) if final else None


def context_start(text: str, start: int, lookback: int) -> int:
    """Where the look-back before `start` begins: at a word boundary, never mid-word."""
    if lookback <= 0 or start == 0:
        return start
    begin = max(0, start - lookback)
    if begin == 0:
        return 0
    space = _WHITESPACE.search(text, begin, start)
    return space.end() if space is not None else start


class WindowCutter:
    """Feed it the reply's text as it streams; it hands back each window once it can be cut.

    Only the text still needed (the open window and its look-back) is kept, so memory per
    stream is bounded by `size + lookback`, not by the reply's length.
    """

    def __init__(self, size: int, lookback: int) -> None:
        if size < 2:
            raise ValueError("window size must be at least 2 characters")
        self._size = size
        self._lookback = max(0, lookback)
        self._kept = ""  # the reply from offset `_base` on
        self._base = 0
        self._start = 0  # where the open window begins (absolute offset)
        self._count = 0

    @property
    def received(self) -> int:
        """Characters fed so far."""
        return self._base + len(self._kept)

    @property
    def judged_up_to(self) -> int:
        """End of the last window cut (absolute offset)."""
        return self._start

    def feed(self, delta: str) -> list[Window]:
        if delta:
            self._kept += delta
        return self._cut(final=False)

    def finish(self) -> list[Window]:
        """The reply is complete: the rest becomes the last window (if there is a rest)."""
        return self._cut(final=True)

    def _cut(self, final: bool) -> list[Window]:
        windows: list[Window] = []
        while True:
            local_start = self._start - self._base
            minimum = FIRST_WINDOW_MIN_CHARS if self._count == 0 else None
            end = cut_point(self._kept, local_start, self._size, final, minimum)
            if end is None:
                break
            context = context_start(self._kept, local_start, self._lookback)
            windows.append(
                Window(
                    index=self._count,
                    start=self._start,
                    end=self._base + end,
                    context_start=self._base + context,
                    text=self._kept[context:end],
                )
            )
            self._count += 1
            self._start = self._base + end
        self._trim()
        return windows

    def _trim(self) -> None:
        # Keep the look-back the next window may need, plus a margin to find a word boundary.
        keep_from = max(0, self._start - self._base - self._lookback - 1)
        if keep_from > 0:
            self._kept = self._kept[keep_from:]
            self._base += keep_from
