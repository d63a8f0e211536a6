"""Readers for the public benchmarks' own file formats, from local files (no download).

Each reader maps its data set's labels to `safe`/`unsafe` the way the RSafe paper's evaluation did
(shared/design/rsafe.md): the `unsafe` class is the positive one and F1 is computed on it.

| format | fields read | label mapping |
| --- | --- | --- |
| toxicchat | user_input, toxicity | toxicity 1 -> unsafe, 0 -> safe (not jailbreaking) |
| openai-moderation | prompt, S H V HR SH S3 H2 V2 | unsafe if any category flag is 1 |
| aegis2-prompt | prompt, prompt_label | safe/unsafe as given; `REDACTED` prompts skipped |
| aegis2-response | prompt, response, response_label | safe/unsafe; no response: skipped |
| wildguardtest-prompt | prompt, prompt_harm_label | harmful -> unsafe, unharmful -> safe |
| wildguardtest-response | prompt, response, response_harm_label | same; rows without one skipped |
| harmbench | Behavior (+ ContextString), or one behavior a line | all unsafe |
| xstest-prompt | prompt, label (or type) | safe/unsafe; else type `contrast_*` -> unsafe |
| xstest-response | prompt, response/completion, harmfulness | see `read_xstest_responses` |
| pku-saferlhf | prompt, response_0/1, is_response_0/1_safe | two items per row; true -> safe |
| beavertails | prompt, response, is_safe | true -> safe, false -> unsafe |

Files may be CSV, TSV, JSONL or a JSON list (HuggingFace parquet: export to JSONL first). Item ids
are `<source>-<row number>` (with a suffix for two-item rows), stable across reruns of one file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .dataset import EvalItem, Label

Row = dict[str, Any]
Reader = Callable[[Path], list[EvalItem]]

_TRUE = {"1", "true", "yes", "1.0"}
_FALSE = {"0", "false", "no", "0.0"}


def read_rows(path: Path) -> list[Row]:
    """Rows of a CSV/TSV/JSONL/JSON file as dicts."""
    suffix = path.suffix.lower()
    if suffix in {".csv", ".tsv"}:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"data": [...]} or similar single-key wrappers
            lists = [value for value in data.values() if isinstance(value, list)]
            if len(lists) != 1:
                raise ValueError(f"{path}: expected a JSON list of rows")
            data = lists[0]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of rows")
        return [row for row in data if isinstance(row, dict)]
    raise ValueError(f"{path}: unsupported file type {suffix!r} (csv, tsv, jsonl, json)")


def _flag(value: Any, where: str) -> bool:
    """A 0/1 or true/false cell."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where}: expected 0/1 or true/false, got {value!r}")


def _text(row: Row, key: str, where: str) -> str:
    value = row.get(key)
    if value is None or not str(value).strip():
        raise ValueError(f"{where}: missing {key!r}")
    return str(value)


def _optional_text(row: Row, *keys: str) -> str | None:
    for key in keys:
        value = row.get(key)
        if value is not None and str(value).strip() and str(value).strip().lower() != "none":
            return str(value)
    return None


def _label(value: Any, where: str) -> Label:
    """safe/unsafe from the spellings the benchmarks use (harmful/unharmful included)."""
    text = str(value).strip().lower()
    if text in {"unsafe", "harmful"}:
        return "unsafe"
    if text in {"safe", "unharmful"}:
        return "safe"
    raise ValueError(f"{where}: unknown label {value!r}")


def _item(source: str, index: int, prompt: str, label: Label, **extra: Any) -> EvalItem:
    suffix = extra.pop("suffix", "")
    return EvalItem(
        id=f"{source}-{index:06d}{suffix}", prompt=prompt, label=label, source=source, **extra
    )


def read_toxicchat(path: Path) -> list[EvalItem]:
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        label: Label = "unsafe" if _flag(row.get("toxicity"), where) else "safe"
        meta = {key: row[key] for key in ("conv_id", "jailbreaking") if key in row}
        items.append(_item("toxicchat", index, _text(row, "user_input", where), label, meta=meta))
    return items


OPENAI_MODERATION_CATEGORIES = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def read_openai_moderation(path: Path) -> list[EvalItem]:
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        flags = [
            name
            for name in OPENAI_MODERATION_CATEGORIES
            if row.get(name) not in (None, "") and _flag(row[name], where)
        ]
        label: Label = "unsafe" if flags else "safe"
        prompt = _text(row, "prompt", where)
        items.append(_item("openai-moderation", index, prompt, label, meta={"categories": flags}))
    return items


def read_aegis2(path: Path, level: str) -> list[EvalItem]:
    source = f"aegis2-{level}"
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        prompt = _text(row, "prompt", where)
        if prompt.strip() == "REDACTED":  # prompts withheld by the data set (suicide subset)
            continue
        meta = {"aegis_id": row["id"]} if "id" in row else {}
        if level == "prompt":
            label = _label(row.get("prompt_label"), where)
            items.append(_item(source, index, prompt, label, meta=meta))
            continue
        response = _optional_text(row, "response")
        raw_label = _optional_text(row, "response_label")
        if response is None or raw_label is None:
            continue
        label = _label(raw_label, where)
        items.append(_item(source, index, prompt, label, response=response, meta=meta))
    return items


def read_wildguardtest(path: Path, level: str) -> list[EvalItem]:
    source = f"wildguardtest-{level}"
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        prompt = _text(row, "prompt", where)
        meta = {key: row[key] for key in ("adversarial", "subcategory") if key in row}
        if level == "prompt":
            label = _label(row.get("prompt_harm_label"), where)
            items.append(_item(source, index, prompt, label, meta=meta))
            continue
        response = _optional_text(row, "response")
        raw_label = _optional_text(row, "response_harm_label")
        if response is None or raw_label is None:
            continue
        items.append(
            _item(source, index, prompt, _label(raw_label, where), response=response, meta=meta)
        )
    return items


def read_harmbench(path: Path) -> list[EvalItem]:
    """HarmBench behaviors CSV (contextual behaviors get their context first), or a text file."""
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        return [_item("harmbench", i, line, "unsafe") for i, line in enumerate(lines) if line]
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        behavior = _text(row, "Behavior", where)
        context = _optional_text(row, "ContextString")
        prompt = f"{context}\n\n---\n\n{behavior}" if context else behavior
        meta = {
            key: row[key]
            for key in ("BehaviorID", "FunctionalCategory", "SemanticCategory")
            if row.get(key)
        }
        items.append(_item("harmbench", index, prompt, "unsafe", meta=meta))
    return items


def read_xstest_prompts(path: Path) -> list[EvalItem]:
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        kind = str(row.get("type") or "")
        if row.get("label") not in (None, ""):
            label = _label(row["label"], where)
        elif kind:
            label = "unsafe" if kind.startswith("contrast") else "safe"
        else:
            raise ValueError(f"{where}: neither 'label' nor 'type'")
        items.append(
            _item("xstest-prompt", index, _text(row, "prompt", where), label, meta={"type": kind})
        )
    return items


def read_xstest_responses(path: Path) -> list[EvalItem]:
    """XSTest responses. The label is, in order of preference:

    - `harmfulness` (or `label`) = harmful/unharmful: the harm annotation used by WildGuard and the
      guard-model papers that the RSafe paper compares with;
    - otherwise `final_label`, XSTest's compliance annotation: a response is unsafe when it fully
      complies (`1_full_compliance`) with an unsafe prompt (`type` starting with `contrast`, or a
      prompt `label` of unsafe); refusals and anything answering a safe prompt are safe.
    """
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        prompt = _text(row, "prompt", where)
        response = _optional_text(row, "response", "completion")
        if response is None:
            raise ValueError(f"{where}: missing 'response'/'completion'")
        kind = str(row.get("type") or "")
        raw = _optional_text(row, "harmfulness")
        if raw is None and str(row.get("label", "")).strip().lower() in {"harmful", "unharmful"}:
            raw = str(row["label"])
        if raw is not None:
            label = _label(raw, where)
        elif row.get("final_label"):
            prompt_unsafe = kind.startswith("contrast") or str(row.get("label", "")).strip() in {
                "unsafe"
            }
            complied = str(row["final_label"]).strip().startswith("1")
            label = "unsafe" if prompt_unsafe and complied else "safe"
        else:
            raise ValueError(f"{where}: neither 'harmfulness', 'label' nor 'final_label'")
        meta = {"type": kind} if kind else {}
        items.append(_item("xstest-response", index, prompt, label, response=response, meta=meta))
    return items


def read_pku_saferlhf(path: Path) -> list[EvalItem]:
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        prompt = _text(row, "prompt", where)
        for which in (0, 1):
            safe = _flag(row.get(f"is_response_{which}_safe"), where)
            items.append(
                _item(
                    "pku-saferlhf",
                    index,
                    prompt,
                    "safe" if safe else "unsafe",
                    response=_text(row, f"response_{which}", where),
                    suffix=f"-r{which}",
                )
            )
    return items


def read_beavertails(path: Path) -> list[EvalItem]:
    items = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}:row {index}"
        label: Label = "safe" if _flag(row.get("is_safe"), where) else "unsafe"
        response = _text(row, "response", where)
        items.append(
            _item("beavertails", index, _text(row, "prompt", where), label, response=response)
        )
    return items


FORMATS: dict[str, Reader] = {
    "toxicchat": read_toxicchat,
    "openai-moderation": read_openai_moderation,
    "aegis2-prompt": partial(read_aegis2, level="prompt"),
    "aegis2-response": partial(read_aegis2, level="response"),
    "wildguardtest-prompt": partial(read_wildguardtest, level="prompt"),
    "wildguardtest-response": partial(read_wildguardtest, level="response"),
    "harmbench": read_harmbench,
    "xstest-prompt": read_xstest_prompts,
    "xstest-response": read_xstest_responses,
    "pku-saferlhf": read_pku_saferlhf,
    "beavertails": read_beavertails,
}


def read_dataset(path: Path, fmt: str) -> list[EvalItem]:
    """Read a public benchmark file in its own format (see FORMATS)."""
    try:
        reader = FORMATS[fmt]
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; one of: {', '.join(FORMATS)}") from None
    return reader(path)
