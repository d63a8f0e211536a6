"""The public benchmarks' own files as evaluation items, by format name (`rsafe eval --format`).

The reading itself, and how each data set's labels map to `safe`/`unsafe` (the way the RSafe
paper's evaluation did: `unsafe` is the positive class and F1 is computed on it), is the core's
one dataset-reader library, `rsafe_core.datasets`, which the trainer's `prepare-data` reads with
too. Here each record becomes an `EvalItem` with the record's stable id (`<source>-<row>`, with a
suffix for two-item rows).

| format | data set |
| --- | --- |
| toxicchat | ToxicChat |
| openai-moderation | the OpenAI Moderation evaluation set |
| aegis2-prompt, aegis2-response | Aegis 2.0 (`REDACTED` prompts skipped) |
| wildguardtest-prompt, wildguardtest-response | WildGuardTest |
| harmbench | HarmBench behaviours (all unsafe) |
| xstest-prompt, xstest-response | XSTest prompts, XSTest responses |
| pku-saferlhf | PKU-SafeRLHF (two items per row) |
| beavertails | BeaverTails |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from rsafe_core import datasets
from rsafe_core.datasets import Record

from .dataset import EvalItem

Reader = Callable[[Path], list[EvalItem]]


def _items(records: Iterable[Record]) -> list[EvalItem]:
    return [
        EvalItem(
            id=record.id,
            prompt=record.prompt,
            response=record.response,
            label=record.label,
            source=record.source,
            meta=dict(record.meta),
        )
        for record in records
    ]


def _reader(read: Callable[[Path], Iterable[Record]]) -> Reader:
    return lambda path: _items(read(path))


FORMATS: dict[str, Reader] = {
    "toxicchat": _reader(datasets.read_toxicchat),
    "openai-moderation": _reader(datasets.read_openai_moderation),
    "aegis2-prompt": _reader(partial(datasets.read_aegis2, levels=("prompt",))),
    "aegis2-response": _reader(partial(datasets.read_aegis2, levels=("response",))),
    "wildguardtest-prompt": _reader(partial(datasets.read_wildguardtest, level="prompt")),
    "wildguardtest-response": _reader(partial(datasets.read_wildguardtest, level="response")),
    "harmbench": _reader(datasets.read_harmbench),
    "xstest-prompt": _reader(datasets.read_xstest_prompts),
    "xstest-response": _reader(datasets.read_xstest_responses),
    "pku-saferlhf": _reader(datasets.read_pku_saferlhf),
    "beavertails": _reader(datasets.read_beavertails),
}


def read_dataset(path: Path, fmt: str) -> list[EvalItem]:
    """Read a public benchmark file in its own format (see FORMATS)."""
    try:
        reader = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}") from None
    return reader(path)
