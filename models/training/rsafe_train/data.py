"""Training data: the public data sets' local files → one labelled JSONL schema.

Schema of every record (`Example`): `{"prompt": str, "response"?: str, "label": "safe"|"unsafe",
"source": str, "category"?: str, "topic"?: str, "policy"?: str}`. A record with a `response` is a
response-level item (is the agent's reply unsafe?), one without is prompt-level (is the user's
message unsafe?). `category` (an rsafe-default id) and `topic` say what the content is, for stage
1's reasoning and the policy swaps (`categories.py`, `swaps.py`); `policy` is the policy text the
item is judged under when it is not the run's default (a policy-swap view).

Converters turn the records of the core's one dataset-reader library (`rsafe_core.datasets`, which
`rsafe eval` reads with too: file formats, columns and label mappings are documented there) into
`Example`s, texts stripped, under the source names below:
- ToxicChat (toxicchat0124) — prompt-level;
- Aegis 2.0 — prompt-level (and, on request, response-level where the response is labelled);
- OR-Bench: the hard-1k subset is safe (over-refusal bait), toxic is unsafe — prompt-level;
- PKU-SafeRLHF — two response-level items per row;
- BeaverTails (30k_train) — response-level;
- the project's local suite (data/local-suite/train.jsonl): `id`, `prompt`, `response`?, `label`,
  `source`.

`balanced_sample` keeps, per source, up to N safe and N unsafe items (1000/1000 as in the paper),
seeded; `within_length` drops items longer than a token cap (1024 prompt-level, 2048 response-level
in the paper), counted with a tokenizer when given, else by whitespace-separated words.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rsafe_core import datasets
from rsafe_core.datasets import DataFormatError as DataFormatError  # raised by the readers
from rsafe_core.datasets import Record, read_rows

from rsafe_train.categories import annotate

SAFE = "safe"
UNSAFE = "unsafe"
LOCAL_SUITE_PATH = Path("data/local-suite/train.jsonl")

# The files as the data sets publish them (.jsonl, .json, .csv, .tsv, .parquet), as dict rows.
read_records = read_rows


@dataclass(frozen=True, slots=True)
class Example:
    prompt: str
    label: str
    source: str
    response: str | None = None
    category: str | None = None
    topic: str | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        if self.label not in (SAFE, UNSAFE):
            raise DataFormatError(f"label must be 'safe' or 'unsafe', got {self.label!r}")

    @property
    def is_response_level(self) -> bool:
        return self.response is not None

    def to_dict(self) -> dict[str, str]:
        record = {"prompt": self.prompt}
        if self.response is not None:
            record["response"] = self.response
        record["label"] = self.label
        record["source"] = self.source
        for key in ("category", "topic", "policy"):
            value = getattr(self, key)
            if value is not None:
                record[key] = value
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Example:
        response = record.get("response")
        return cls(
            prompt=str(record["prompt"]),
            label=str(record["label"]).strip().lower(),
            source=str(record.get("source") or "unknown"),
            response=None if response in (None, "") else str(response),
            category=_text(record.get("category")),
            topic=_text(record.get("topic")),
            policy=record.get("policy") or None,  # verbatim: it is the prompt's policy text
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# --- converters ---------------------------------------------------------------------------------


def _examples(records: Iterable[Record], source: str) -> Iterator[Example]:
    """The records as training examples under `source`, their texts stripped."""
    for record in records:
        prompt = _text(record.prompt)
        if prompt:
            yield Example(prompt, record.label, source, _text(record.response))


def convert_toxicchat(path: Path, source: str = "toxicchat") -> Iterator[Example]:
    return _examples(datasets.read_toxicchat(path), source)


def convert_aegis2(
    path: Path, source: str = "aegis2", include_responses: bool = False
) -> Iterator[Example]:
    levels: tuple[datasets.Level, ...] = (
        ("prompt", "response") if include_responses else ("prompt",)
    )
    return _examples(datasets.read_aegis2(path, levels), source)


def convert_orbench(
    path: Path, subset: str | None = None, source: str = "orbench"
) -> Iterator[Example]:
    """OR-Bench: hard-1k (seemingly toxic but benign) → safe, toxic → unsafe; `subset` ("hard" or
    "toxic") is read from the file name when None."""
    return _examples(datasets.read_orbench(path, subset), source)


def convert_pku_saferlhf(path: Path, source: str = "pku-saferlhf") -> Iterator[Example]:
    return _examples(datasets.read_pku_saferlhf(path), source)


def convert_beavertails(path: Path, source: str = "beavertails") -> Iterator[Example]:
    return _examples(datasets.read_beavertails(path), source)


def read_local_suite(path: Path = LOCAL_SUITE_PATH, *, required: bool = False) -> list[Example]:
    """The project's own labelled suite, each item with its category and topic (from the
    source's own labels in `meta`, else the text); an absent file gives [] unless `required`."""
    if not path.is_file():
        if required:
            raise DataFormatError(f"{path}: the local suite is not there")
        return []
    examples = []
    for row in read_records(path):
        for column in ("prompt", "label"):
            datasets.column(row, column, path)
        source = str(row.get("source") or "local-suite")
        meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
        found = annotate(str(row["prompt"]), str(row["label"]).strip().lower(), source, meta)
        examples.append(
            Example.from_dict(
                {**row, "source": source, "category": found.category, "topic": found.topic}
            )
        )
    return examples


def read_jsonl(path: Path) -> list[Example]:
    """Read back a file in the unified schema (what `write_jsonl` writes)."""
    return [Example.from_dict(row) for row in read_records(path)]


def write_jsonl(examples: Iterable[Example], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(json.dumps(example.to_dict(), ensure_ascii=False) + "\n")
            count += 1
    return count


# name → converter(path) for the CLI's `--input NAME=PATH`.
CONVERTERS: dict[str, Callable[[Path], Iterable[Example]]] = {
    "toxicchat": convert_toxicchat,
    "aegis2": convert_aegis2,
    "aegis2-responses": lambda path: convert_aegis2(path, include_responses=True),
    "orbench": convert_orbench,
    "orbench-hard": lambda path: convert_orbench(path, "hard"),
    "orbench-toxic": lambda path: convert_orbench(path, "toxic"),
    "pku-saferlhf": convert_pku_saferlhf,
    "beavertails": convert_beavertails,
    "local-suite": lambda path: read_local_suite(path, required=True),
}


def convert(name: str, path: Path) -> list[Example]:
    try:
        converter = CONVERTERS[name]
    except KeyError:
        raise DataFormatError(f"unknown source {name!r}; known: {', '.join(CONVERTERS)}") from None
    return list(converter(path))


# --- length cap and balance ---------------------------------------------------------------------


class TokenCounter(Protocol):
    def __call__(self, text: str) -> int: ...


def whitespace_tokens(text: str) -> int:
    return len(text.split())


def tokenizer_counter(tokenizer: Any) -> TokenCounter:
    """Count with a Hugging Face tokenizer (no special tokens)."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


def example_tokens(example: Example, counter: TokenCounter) -> int:
    text = example.prompt if example.response is None else f"{example.prompt}\n{example.response}"
    return counter(text)


def within_length(
    examples: Iterable[Example],
    *,
    max_prompt_level_tokens: int | None = 1024,
    max_response_level_tokens: int | None = 2048,
    counter: TokenCounter | None = None,
) -> list[Example]:
    """Drop items longer than the cap of their level (None: no cap)."""
    counter = counter or whitespace_tokens
    kept = []
    for example in examples:
        cap = max_response_level_tokens if example.is_response_level else max_prompt_level_tokens
        if cap is None or example_tokens(example, counter) <= cap:
            kept.append(example)
    return kept


def deduplicate(examples: Iterable[Example]) -> list[Example]:
    """Drop exact repeats of (prompt, response) within a source; the first label wins."""
    seen: set[tuple[str, str, str | None]] = set()
    kept = []
    for example in examples:
        key = (example.source, example.prompt, example.response)
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept


def balanced_sample(
    examples: Iterable[Example], per_label: int = 1000, seed: int = 0
) -> list[Example]:
    """Per source, up to `per_label` safe and `per_label` unsafe items, seeded; then shuffled."""
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[Example]] = defaultdict(list)
    for example in examples:
        groups[(example.source, example.label)].append(example)
    chosen: list[Example] = []
    for key in sorted(groups):
        group = groups[key]
        chosen.extend(group if len(group) <= per_label else rng.sample(group, per_label))
    rng.shuffle(chosen)
    return chosen


def counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    """{source: {"safe": n, "unsafe": n}} for reports."""
    table: dict[str, dict[str, int]] = defaultdict(lambda: {SAFE: 0, UNSAFE: 0})
    for example in examples:
        table[example.source][example.label] += 1
    return dict(sorted(table.items()))


def prepare(
    inputs: list[tuple[str, Path]],
    *,
    per_label: int = 1000,
    seed: int = 0,
    max_prompt_level_tokens: int | None = 1024,
    max_response_level_tokens: int | None = 2048,
    counter: TokenCounter | None = None,
) -> list[Example]:
    """Convert every (converter name, file), dedupe, cap length, then balance per source."""
    examples: list[Example] = []
    for name, path in inputs:
        examples.extend(convert(name, path))
    examples = within_length(
        deduplicate(examples),
        max_prompt_level_tokens=max_prompt_level_tokens,
        max_response_level_tokens=max_response_level_tokens,
        counter=counter,
    )
    return balanced_sample(examples, per_label=per_label, seed=seed)
