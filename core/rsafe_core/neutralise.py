"""Caller text made fit for the prompt, in time linear in its length, hiding nothing.

`normalise(text)` gives the text the guard judges (the length limits apply to it):
  1. Unicode NFKC, so look-alikes such as fullwidth `＜ＥＮＤ` collapse into what they imitate.
     A run of more than 30 combining marks is put in canonical order first: CPython orders marks
     by insertion sort, quadratic in the run (32 K marks took seconds). It runs piece by piece,
     so with a limit a text that expands past it (U+FDFA becomes 18 characters) stops early.
  2. Invisible characters are made visible, never dropped, so the guard judges what the protected
     model reads: tag characters (U+E0000-E007F) are decoded to the ASCII they encode,
     `[hidden: text]`; a run of variation selectors is decoded as bytes ("emoji smuggling") when
     that gives readable text, else shown as code points, `[U+FE01 U+FE02]`; any other format or
     default-ignorable character is shown as its code point, `[U+200B]`. Kept as written: a
     presentation selector or zero-width joiner inside an emoji (`❤️`, `👩‍💻`, `1️⃣`) and a joiner
     between two letters of a script where at least one has no Latin look-alike (Persian, Indic).
     The kinds found are reported (`Normalised.hidden`).
`neutralise(text)` gives what enters a slot of the prompt: `normalise`, then
  3. every line break becomes `\\n`;
  4. `<` that opens a block marker, a think tag or a chat-template token (`<BEGIN …`, `<END …`,
     `<think>`, `</think>`, `<|im_start|>`) becomes `‹` (U+2039);
  5. the backslash of `\\boxed` becomes `⧵` (U+29F5), so content cannot write the answer format;
  6. a role label (`User:`, `Agent:`, `Assistant:`, `System:`) at the start of a line, after any
     spaces or control characters, gets a fullwidth colon `：`.
Steps 4-6 search a copy in which every look-alike of the keywords' letters, `:`, `/` and `\\`
(Unicode's confusables data, `unicode_tables.py`) is folded to what it imitates, one code point for
one, so a match is at the same position in the text; only the `<`, `\\` or `:` found are replaced.
Every pattern is possessive (`*+`): it never backtracks, so each character is looked at a bounded
number of times (a `<` followed by 32 K spaces took 15 s with the old backtracking pattern).
Idempotent: neutralising twice gives the same text.
`neutralise_labels(text, labels)` applies step 6 to other labels too: a family whose model
answers in labelled lines (Qwen3Guard's `Safety:`) keeps content from starting a line like one.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from .unicode_tables import BLANKS, FOLDS, INVISIBLE, NO_BOUNDARY_BEFORE, NON_STARTERS


class HiddenKind(StrEnum):
    """What invisible content a text carried (made visible for judging)."""

    TAG_CHARACTERS = "tag_characters"
    VARIATION_SELECTORS = "variation_selectors"
    BIDI_CONTROLS = "bidi_controls"
    INVISIBLE_CHARACTERS = "invisible_characters"


class TextTooLong(ValueError):
    """The text, once normalised, is longer than the limit it was normalised for."""


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str
    hidden: frozenset[HiddenKind] = frozenset()


def _spans(points: Iterable[int]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for cp in sorted(points):
        if merged and merged[-1][1] == cp - 1:
            merged[-1] = (merged[-1][0], cp)
        else:
            merged.append((cp, cp))
    return merged


def _char_class(spans: Iterable[tuple[int, int]]) -> str:
    return "".join(
        f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}" for low, high in spans
    )


# UAX #15 "stream-safe" text has at most 30 non-starters in a row; longer runs are pre-sorted.
_LONG_MARK_RUN = re.compile(f"[{_char_class(NON_STARTERS)}]{{31,}}+")
# `re` tests a character against a class's supplementary-plane ranges one by one (~300 ns a
# character for these): a first pass takes any supplementary character as a candidate.
_BMP_NON_STARTERS = _char_class((low, high) for low, high in NON_STARTERS if high <= 0xFFFF)
_MAYBE_LONG_MARK_RUN = re.compile(f"[{_BMP_NON_STARTERS}\U00010000-\U0010ffff]{{31,}}+")
# The few marks whose decomposition differs from themselves (U+0344 is U+0308 U+0301).
_MARK_DECOMPOSITIONS: dict[int, str] = {
    cp: decomposed
    for low, high in NON_STARTERS
    for cp in range(low, high + 1)
    if (decomposed := unicodedata.normalize("NFKD", chr(cp))) != chr(cp)
}
_DECOMPOSING_MARK = re.compile(f"[{_char_class(_spans(_MARK_DECOMPOSITIONS))}]")
# NFKC runs on pieces of about this many characters, cut where it cannot join or reorder across
# the cut, so a text that expands past its limit (U+FDFA is 18 characters) is refused early.
_PIECE = 4096
_BOUNDARY = re.compile(f"[^{_char_class(NO_BOUNDARY_BEFORE)}]")
_INVISIBLE = re.compile(f"[{_char_class(INVISIBLE)}]")

# Carriers: characters that can hold a message (tag characters, the variation selectors of the
# "emoji smuggling" scheme) and the joiners, which may be part of visible text; handled run by
# run. Every other invisible character is simply shown as its code point (one `str.translate`).
_TAG_RANGE = range(0xE0000, 0xE0080)
_SELECTOR_RANGES = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
_JOINERS = "\u200c\u200d"
_CARRIER_POINTS = {*_TAG_RANGE, *(cp for r in _SELECTOR_RANGES for cp in r), *map(ord, _JOINERS)}
_PLAIN_POINTS = sorted(
    {cp for low, high in INVISIBLE for cp in range(low, high + 1)} - _CARRIER_POINTS
)
_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_MONGOLIAN_SELECTORS = "\u180b-\u180d\u180f"
_PLAIN_CLASS = _char_class(_spans(_PLAIN_POINTS))
_PLAIN = re.compile(f"[{_PLAIN_CLASS}]")
_BIDI = re.compile(f"[{_BIDI_CONTROLS}]")
_MONGOLIAN_SELECTOR = re.compile(f"[{_MONGOLIAN_SELECTORS}]")
_OTHER_PLAIN = re.compile(f"(?![{_BIDI_CONTROLS}{_MONGOLIAN_SELECTORS}])[{_PLAIN_CLASS}]")
_PLAIN_ESCAPES: dict[int, str] = {cp: f"[U+{cp:04X}]" for cp in _PLAIN_POINTS}
_TAGS = "\U000e0000-\U000e007f"
_SELECTORS = "\ufe00-\ufe0f\U000e0100-\U000e01ef"
_CARRIER_RUN = re.compile(f"[{_TAGS}{_SELECTORS}{_JOINERS}]++")
_SEGMENT = re.compile(f"(?P<tags>[{_TAGS}]++)|(?P<selectors>[{_SELECTORS}]++)|[{_JOINERS}]++")

# Tag characters spell ASCII (U+E0020-E007E); LANGUAGE TAG and CANCEL TAG only delimit a sequence.
_TAG_TEXT: dict[int, str] = {
    **{cp: "\ufffd" for cp in _TAG_RANGE},
    **{cp: chr(cp - 0xE0000) for cp in range(0xE0020, 0xE007F)},
    0xE0001: "",
    0xE007F: "",
}
# Variation selectors as bytes: VS1-VS16 are 0-15, VS17-VS256 are 16-255.
_SELECTOR_BYTE: dict[int, str] = {
    **{0xFE00 + i: chr(i) for i in range(16)},
    **{0xE0100 + i: chr(16 + i) for i in range(240)},
}
_ESCAPE: dict[int, str] = {cp: f" U+{cp:04X}" for cp in sorted(_CARRIER_POINTS)}
_KIND: dict[str, HiddenKind] = {
    **{chr(cp): HiddenKind.TAG_CHARACTERS for cp in _TAG_RANGE},
    **{chr(cp): HiddenKind.VARIATION_SELECTORS for r in _SELECTOR_RANGES for cp in r},
    **{joiner: HiddenKind.INVISIBLE_CHARACTERS for joiner in _JOINERS},
}
# A carrier on its own: a tag character spells its letter, anything else is its code point.
_SHOWN_ALONE: dict[str, str] = {
    chr(cp): f"[hidden: {chr(cp).translate(_TAG_TEXT)}]"
    if cp in _TAG_RANGE and chr(cp).translate(_TAG_TEXT)
    else f"[{_ESCAPE[cp][1:]}]"
    for cp in _ESCAPE
}
_WHITESPACE = re.compile(r"\s")

_PRESENTATION_SELECTORS = frozenset({"\ufe0e", "\ufe0f"})
_EMOJI_JOINERS = frozenset({"\u200d", "\ufe0f\u200d"})
_SCRIPT_JOINERS = frozenset({"\u200c", "\u200d"})
_MAYBE_KEPT = _PRESENTATION_SELECTORS | _EMOJI_JOINERS | _SCRIPT_JOINERS
_KEYCAP_BASES = frozenset("#*0123456789")
_KEYCAP = "\u20e3"

# Look-alike -> the keyword letter (lower case) or punctuation it imitates, for str.translate.
_FOLD: dict[int, str] = {cp: target for target, members in FOLDS.items() for cp in members}
_BLANK = _char_class(BLANKS)  # spaces and controls, not "\n"
_GAP = f"[\n{_BLANK}]*+"
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_MARKER_OPEN = re.compile(f"<(?={_GAP}/?{_GAP}(?:begin|end|think)\\b|\\|)", re.IGNORECASE)
_BOXED = re.compile(f"\\\\(?={_GAP}boxed)", re.IGNORECASE)
_ROLE_LINE = re.compile(
    f"^[{_BLANK}]*+(?:user|agent|assistant|system)[{_BLANK}]*+:", re.IGNORECASE | re.MULTILINE
)


def normalise(text: str, limit: int | None = None) -> Normalised:
    """The text as the guard judges it: NFKC, with invisible characters made visible.

    With `limit`, TextTooLong as soon as the result is known to be longer (the work stays
    bounded by the limit, not by how far the text would expand).
    """
    if text.isascii():  # O(1) in CPython: nothing below can change ASCII text
        return _within(Normalised(text), limit)
    text = _nfkc(text, limit)
    if _INVISIBLE.search(text) is None:
        return _within(Normalised(text), limit)
    found: set[HiddenKind] = set()
    if _PLAIN.search(text):
        found.update(_plain_kinds(text))
        text = _within(Normalised(text.translate(_PLAIN_ESCAPES)), limit).text
    if _CARRIER_RUN.search(text):
        text = _reveal_carriers(text, found, limit)
    return _within(Normalised(text, frozenset(found)), limit)


def _within(normalised: Normalised, limit: int | None) -> Normalised:
    if limit is not None and len(normalised.text) > limit:
        raise TextTooLong(f"longer than {limit} characters once normalised")
    return normalised


def neutralise(text: str) -> str:
    """Make `text` unable to close its slot, open a marker or write an answer (see module doc)."""
    text = _LINE_BREAKS.sub("\n", normalise(text).text)
    folded = text.translate(_FOLD)
    edits = [(match.start(), "\u2039") for match in _MARKER_OPEN.finditer(folded)]
    edits += [(match.start(), "\u29f5") for match in _BOXED.finditer(folded)]
    edits += [(match.end() - 1, "\uff1a") for match in _ROLE_LINE.finditer(folded)]
    if not edits:
        return text
    characters = list(text)
    for position, replacement in edits:
        characters[position] = replacement
    return "".join(characters)


@lru_cache(maxsize=8)
def _label_line(labels: tuple[str, ...]) -> re.Pattern[str]:
    # Matched against the folded text, so the labels are folded too (`l` folds to `i`).
    words = "|".join(re.escape(label.translate(_FOLD)) for label in labels)
    return re.compile(f"^[{_BLANK}]*+(?:{words})[{_BLANK}]*+:", re.IGNORECASE | re.MULTILINE)


def neutralise_labels(
    text: str, labels: tuple[str, ...] = ("safety", "categories", "refusal")
) -> str:
    """`text` (already neutralised) with a fullwidth colon after any of `labels` (lower case)
    that starts a line, after any spaces or controls, look-alikes folded as in `neutralise`."""
    folded = text.translate(_FOLD)
    positions = [match.end() - 1 for match in _label_line(labels).finditer(folded)]
    if not positions:
        return text
    characters = list(text)
    for position in positions:
        characters[position] = "\uff1a"
    return "".join(characters)


def _nfkc(text: str, limit: int | None = None) -> str:
    """NFKC, piece by piece (see `_PIECE`); TextTooLong once the pieces pass `limit`."""
    pieces: list[str] = []
    total = start = 0
    while start < len(text):
        end = start + _PIECE
        if end < len(text):
            boundary = _BOUNDARY.search(text, end)
            end = boundary.start() if boundary else len(text)
        piece = _nfkc_piece(text[start:end])
        total += len(piece)
        if limit is not None and total > limit:
            raise TextTooLong(f"longer than {limit} characters once normalised")
        pieces.append(piece)
        start = end
    return "".join(pieces)


def _nfkc_piece(text: str) -> str:
    if _MAYBE_LONG_MARK_RUN.search(text) is not None:
        text = _MAYBE_LONG_MARK_RUN.sub(_order_long_runs, text)
    return unicodedata.normalize("NFKC", text)


def _order_long_runs(candidate: re.Match[str]) -> str:
    run = candidate.group()
    if max(run) <= "\uffff":  # no supplementary character: the whole run is marks
        return _canonical_order(run)
    return _LONG_MARK_RUN.sub(lambda match: _canonical_order(match.group()), run)


def _canonical_order(run: str) -> str:
    """A run of marks decomposed and stably sorted by combining class, as NFKC would."""
    if _DECOMPOSING_MARK.search(run):
        run = run.translate(_MARK_DECOMPOSITIONS)
    return "".join(sorted(run, key=unicodedata.combining))


def _kept(run: str, before: str, after: str) -> bool:
    """Invisible characters that are part of how visible text is written, hiding nothing."""
    if run in _PRESENTATION_SELECTORS:  # emoji or text style of the symbol before it
        return _emoji(before) or (before in _KEYCAP_BASES and after == _KEYCAP)
    if run in _EMOJI_JOINERS and _emoji(before) and _emoji(after):
        return True
    if run in _SCRIPT_JOINERS and _letter(before) and _letter(after):
        # Next to a letter with no Latin look-alike, a joiner cannot split a keyword.
        return ord(before) not in _FOLD or ord(after) not in _FOLD
    return False


def _emoji(char: str) -> bool:
    return (
        not char.isascii() and ord(char) not in _FOLD and unicodedata.category(char) in {"So", "Sk"}
    )


def _letter(char: str) -> bool:
    return not char.isascii() and unicodedata.category(char)[0] in {"L", "M"}


def _plain_kinds(text: str) -> set[HiddenKind]:
    kinds = set()
    if _BIDI.search(text):
        kinds.add(HiddenKind.BIDI_CONTROLS)
    if _MONGOLIAN_SELECTOR.search(text):
        kinds.add(HiddenKind.VARIATION_SELECTORS)
    if _OTHER_PLAIN.search(text):
        kinds.add(HiddenKind.INVISIBLE_CHARACTERS)
    return kinds


def _reveal_carriers(text: str, found: set[HiddenKind], limit: int | None) -> str:
    """Each run of carriers kept (part of an emoji or a word), decoded or shown as code points.
    Refuses as soon as the text grows past `limit`: at most one callback per ~2 characters."""
    growth = 0

    def reveal(match: re.Match[str]) -> str:
        nonlocal growth
        run = match.group()
        if run in _MAYBE_KEPT:
            start, end = match.span()
            before = text[start - 1] if start else ""
            after = text[end] if end < len(text) else ""
            if _kept(run, before, after):
                return run
        if len(run) == 1:  # the common case, and the adversarial one ("a\u200d" * 16000)
            found.add(_KIND[run])
            shown = _SHOWN_ALONE[run]
        else:
            shown = "".join(_reveal(segment, found) for segment in _SEGMENT.finditer(run))
        growth += len(shown) - len(run)
        if limit is not None and len(text) + growth > limit:
            raise TextTooLong(f"longer than {limit} characters once normalised")
        return shown

    return _CARRIER_RUN.sub(reveal, text)


def _reveal(segment: re.Match[str], found: set[HiddenKind]) -> str:
    run = segment.group()
    if segment.lastgroup == "tags":
        found.add(HiddenKind.TAG_CHARACTERS)
        spelled = run.translate(_TAG_TEXT)
        return f"[hidden: {spelled}]" if spelled else _escaped(run)
    if segment.lastgroup == "selectors":
        found.add(HiddenKind.VARIATION_SELECTORS)
        decoded = _selector_text(run)
        return f"[hidden: {decoded}]" if decoded else _escaped(run)
    found.add(HiddenKind.INVISIBLE_CHARACTERS)
    return _escaped(run)


def _escaped(run: str) -> str:
    return f"[{run.translate(_ESCAPE)[1:]}]"


def _selector_text(selectors: str) -> str | None:
    """The UTF-8 text that variation selectors encode as bytes, if it is readable text."""
    try:
        raw = selectors.translate(_SELECTOR_BYTE).encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return None
    decoded = _WHITESPACE.sub(" ", _nfkc(raw))
    if not decoded.strip() or not decoded.isprintable() or _INVISIBLE.search(decoded):
        return None  # not text (or text hiding more): shown as code points instead
    return decoded
