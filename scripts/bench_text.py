#!/usr/bin/env python
"""CPU cost of the gateway's text handling, in microseconds per KB of caller text.

    .venv/bin/python scripts/bench_text.py            # table; artifacts/bench_text.json
    .venv/bin/python scripts/bench_text.py --quick    # fewer repetitions (CI)

For each shape of text (ordinary English, ordinary non-Latin text, emoji, and the adversarial
shapes the neutraliser once handled in quadratic time) at 1 K and 32 K characters it measures, as
process CPU time (best of N runs):
- `validate`: what every request pays, a cache hit included: `normalise` with the length limit
  (NFKC, invisible characters made visible);
- `render`: what a cache miss adds: the whole prompt rendered (`neutralise` on the text).
µs/KB that stays flat from 1 K to 32 K is linear time; the ratio column says it directly.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "core"), str(REPO / "service")]

from rsafe_core.neutralise import TextTooLong, normalise  # noqa: E402
from rsafe_core.prompt import render_prompt  # noqa: E402
from rsafe_core.turns import Role, Target, Turn  # noqa: E402

LIMIT = 32_000  # RSAFE_MAX_TEXT_CHARS (default)
POLICY = "X1 - Spam\nX2 - Scams"
ENGLISH = "How do I bake bread at home without a mixer? I have flour, water, salt and yeast. "

SHAPES: dict[str, Callable[[int], str]] = {
    "english": lambda n: (ENGLISH * (n // len(ENGLISH) + 1))[:n],
    "cyrillic": lambda n: ("Как испечь хлеб дома без миксера? " * (n // 34 + 1))[:n],
    "emoji": lambda n: ("ok 👍🏽 ❤\ufe0f 👩\u200d💻 " * (n // 15 + 1))[:n],
    "'<' + spaces": lambda n: "<" + " " * (n - 1),
    "many '<'": lambda n: "<" * n,
    "many line starts": lambda n: "User\n" * (n // 5),
    "look-alikes": lambda n: "<\u0415\u039dD " * (n // 5),  # Cyrillic E, Greek N
    "marks, reverse order": lambda n: "a" + "\u0301" * (n // 2) + "\u0316" * (n - n // 2 - 1),
    "zero-width every other": lambda n: "a\u200b" * (n // 2),
    "tag characters": lambda n: "\U000e0041" * n,
    "NFKC x18 (refused)": lambda n: "\ufdfa" * n,
}


def cpu_seconds(work: Callable[[str], object], text: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        work(text)
        best = min(best, time.process_time() - started)
    return best


def validate(text: str) -> bool:
    """The request's checks; False when it gets its 400 (the work is what is measured)."""
    try:
        normalise(text, LIMIT)
    except TextTooLong:
        return False
    return True


def render(text: str) -> None:
    render_prompt([Turn(Role.USER, text)], POLICY, Target.PROMPT)


def measure(runs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, make in SHAPES.items():
        row: dict[str, object] = {"shape": name}
        for size in (1_000, 32_000):
            text = make(size)
            kb = len(text.encode("utf-8")) / 1024
            row[f"validate_us_per_kb_{size}"] = cpu_seconds(validate, text, runs) / kb * 1e6
            row[f"render_us_per_kb_{size}"] = (
                cpu_seconds(render, text, runs) / kb * 1e6 if validate(text) else None
            )
        rows.append(row)
    return rows


def table(rows: list[dict[str, object]]) -> str:
    def cell(value: object) -> str:
        return f"{value:9.1f}" if isinstance(value, float) else f"{'-':>9}"

    lines = [
        f"{'shape':24} {'validate µs/KB 1K':>18} {'32K':>9} {'render µs/KB 1K':>16} {'32K':>9}",
    ]
    for row in rows:
        lines.append(
            f"{row['shape']!s:24} {cell(row['validate_us_per_kb_1000']):>18} "
            f"{cell(row['validate_us_per_kb_32000'])} "
            f"{cell(row['render_us_per_kb_1000']):>16} {cell(row['render_us_per_kb_32000'])}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions: seconds")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "bench_text.json")
    args = parser.parse_args(argv)
    rows = measure(runs=2 if args.quick else 7)
    print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(
        orjson.dumps({"limit_chars": LIMIT, "rows": rows}, option=orjson.OPT_INDENT_2)
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
