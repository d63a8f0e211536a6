"""Readers for the public safety data sets, from local files as they are published (no download),
shared by the evaluator (`rsafe eval`) and the trainer (`rsafe-train prepare-data`).

Every reader yields `Record`s: a prompt, optionally the assistant's response (then the record is a
response-level check), a gold label `safe`/`unsafe` mapped the way the RSafe paper did (`unsafe` is
the positive class), the data set's name, the row it came from and what else the row says (`meta`).
Texts are kept verbatim; a row whose text is blank is skipped, a missing column or an unknown
label is a `DataFormatError` naming the file, the row and the column.

| reader | columns | label |
| --- | --- | --- |
| toxicchat | user_input, toxicity | toxicity 1 -> unsafe, 0 -> safe (not jailbreaking) |
| openai_moderation | prompt, S H V HR SH S3 H2 V2 | unsafe if any category flag is 1 |
| aegis2 | prompt, prompt_label; response, response_label | as given; `REDACTED` prompts skipped |
| wildguardtest | prompt, prompt_harm_label; response, response_harm_label | harmful -> unsafe |
| harmbench | Behavior (+ ContextString), or one behaviour a line | all unsafe |
| xstest_prompts | prompt, label (or type) | as given; else type `contrast_*` -> unsafe |
| xstest_responses | prompt, response/completion, harmfulness | see `read_xstest_responses` |
| orbench | prompt, category | the hard-1k subset safe (over-refusal bait), toxic unsafe |
| pku_saferlhf | prompt, response_0/1, is_response_0/1_safe | two records per row; true -> safe |
| beavertails | prompt, response, is_safe | true -> safe, false -> unsafe |

Files may be CSV, TSV, JSONL, a JSON list (or an object holding one) or Parquet (read with
pyarrow, imported only then). A record's `id` is `<source>-<row number><part>`: stable across
reads of one file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Label = Literal["safe", "unsafe"]
Row = dict[str, Any]

_TRUE = {"1", "true", "yes", "1.0"}
_FALSE = {"0", "false", "no", "0.0"}


class DataFormatError(ValueError):
    """A file or row that cannot be read; the message names the file, the row and the column."""


@dataclass(frozen=True)
class Record:
    """One labelled item of a data set."""

    source: str
    row: int  # the row's number in its file, from 0
    prompt: str
    label: Label
    response: str | None = None
    part: str = ""  # tells apart the records of one row (PKU-SafeRLHF's "-r0", "-r1")
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}-{self.row:06d}{self.part}"


# ---------------------------------------------------------------- files and cells


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of a .csv, .tsv, .jsonl/.ndjson, .json or .parquet file, as dicts."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    if suffix in {".csv", ".tsv"}:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
    elif suffix in {".jsonl", ".ndjson"}:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise DataFormatError(f"{path}:{number}: not JSON ({exc})") from exc
    elif suffix == ".json":
        yield from _json_rows(path, json.loads(path.read_text(encoding="utf-8")))
    elif suffix == ".parquet":
        import pyarrow.parquet as pq  # only for Parquet files: the trainer's environment has it

        yield from pq.read_table(path).to_pylist()
    else:
        raise DataFormatError(
            f"{path}: unsupported file type {suffix!r} (csv, tsv, jsonl, json, parquet)"
        )


def _json_rows(path: Path, data: Any) -> list[Row]:
    if isinstance(data, dict):  # {"data": [...]}, {"rows": [...]} or another one-list wrapper
        named = [data[key] for key in ("data", "rows", "train") if key in data]
        lists = named or [value for value in data.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise DataFormatError(f"{path}: expected a JSON list of rows")
        data = lists[0]
    if not isinstance(data, list):
        raise DataFormatError(f"{path}: expected a JSON list of rows")
    return [row for row in data if isinstance(row, dict)]


def _where(path: Path, index: int) -> str:
    return f"{path}:row {index}"


def column(row: Row, name: str, path: Path | str, index: int | None = None) -> Any:
    """The cell `name`; a missing column is an error naming the columns there are."""
    if name not in row:
        at = "" if index is None else f"row {index}; "
        raise DataFormatError(f"{path}: column {name!r} is missing ({at}columns: {sorted(row)})")
    return row[name]


def present(value: Any) -> bool:
    """A cell with text in it (not None nor blank)."""
    return value is not None and bool(str(value).strip())


def optional_text(row: Row, *names: str) -> str | None:
    """The first of the cells `names` that has text (a CSV export's "None" has none), verbatim."""
    for name in names:
        value = row.get(name)
        if present(value) and str(value).strip().lower() != "none":
            return str(value)
    return None


def flag(value: Any, where: str) -> bool:
    """A 0/1 or true/false cell, as the data sets write them (bool, number or text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataFormatError(f"{where}: expected 0/1 or true/false, got {value!r}")


def label(value: Any, where: str) -> Label:
    """safe/unsafe from the spellings the data sets use (harmful/unharmful included)."""
    text = str(value).strip().lower()
    if text in {"unsafe", "harmful"}:
        return "unsafe"
    if text in {"safe", "unharmful"}:
        return "safe"
    raise DataFormatError(f"{where}: unknown label {value!r} (expected safe/unsafe)")


# ---------------------------------------------------------------- the data sets


def read_toxicchat(path: Path) -> Iterator[Record]:
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "user_input", path, index)
        if present(prompt):
            unsafe = flag(column(row, "toxicity", path, index), where)
            meta: Row = {key: row[key] for key in ("conv_id", "jailbreaking") if key in row}
            yield Record("toxicchat", index, str(prompt), "unsafe" if unsafe else "safe", meta=meta)


OPENAI_MODERATION_CATEGORIES = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


def read_openai_moderation(path: Path) -> Iterator[Record]:
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt):
            continue
        flags = [
            name
            for name in OPENAI_MODERATION_CATEGORIES
            if row.get(name) not in (None, "") and flag(row[name], where)
        ]
        verdict: Label = "unsafe" if flags else "safe"
        yield Record("openai-moderation", index, str(prompt), verdict, meta={"categories": flags})


Level = Literal["prompt", "response"]


def read_aegis2(path: Path, levels: tuple[Level, ...] = ("prompt",)) -> Iterator[Record]:
    """Aegis 2.0, one record per level asked for and row (in that order), where it is labelled.
    Sources: `aegis2-prompt`, `aegis2-response`."""
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt) or str(prompt).strip() == "REDACTED":
            continue  # REDACTED: prompts the data set withholds (its suicide subset)
        meta = {"aegis_id": row["id"]} if "id" in row else {}
        for level in levels:
            if level == "prompt":
                raw = column(row, "prompt_label", path, index)
                response = None
            else:
                raw = optional_text(row, "response_label")
                response = optional_text(row, "response")
                if response is None:
                    continue
            if present(raw):
                verdict = label(raw, f"{where}: column '{level}_label'")
                yield Record(f"aegis2-{level}", index, str(prompt), verdict, response, meta=meta)


def read_wildguardtest(path: Path, level: Level) -> Iterator[Record]:
    """WildGuardTest at one level; rows without a labelled response are skipped at `response`."""
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt):
            continue
        meta: Row = {key: row[key] for key in ("adversarial", "subcategory") if key in row}
        if level == "prompt":
            verdict = label(row.get("prompt_harm_label"), where)
            yield Record("wildguardtest-prompt", index, str(prompt), verdict, meta=meta)
            continue
        response = optional_text(row, "response")
        raw = optional_text(row, "response_harm_label")
        if response is not None and raw is not None:
            verdict = label(raw, where)
            yield Record("wildguardtest-response", index, str(prompt), verdict, response, meta=meta)


def read_harmbench(path: Path) -> Iterator[Record]:
    """HarmBench behaviours CSV (contextual behaviours get their context first), or a text file."""
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        yield from (Record("harmbench", i, line, "unsafe") for i, line in enumerate(lines) if line)
        return
    for index, row in enumerate(read_rows(path)):
        behavior = column(row, "Behavior", path, index)
        if not present(behavior):
            continue
        context = optional_text(row, "ContextString")
        prompt = f"{context}\n\n---\n\n{behavior}" if context else str(behavior)
        meta = {
            key: row[key]
            for key in ("BehaviorID", "FunctionalCategory", "SemanticCategory")
            if row.get(key)
        }
        yield Record("harmbench", index, prompt, "unsafe", meta=meta)


def read_xstest_prompts(path: Path) -> Iterator[Record]:
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt):
            continue
        kind = str(row.get("type") or "")
        if row.get("label") not in (None, ""):
            verdict = label(row["label"], where)
        elif kind:
            verdict = "unsafe" if kind.startswith("contrast") else "safe"
        else:
            raise DataFormatError(f"{where}: neither 'label' nor 'type'")
        yield Record("xstest-prompt", index, str(prompt), verdict, meta={"type": kind})


def read_xstest_responses(path: Path) -> Iterator[Record]:
    """XSTest responses. The label is, in order of preference:

    - `harmfulness` (or `label`) = harmful/unharmful: the harm annotation used by WildGuard and the
      guard-model papers that the RSafe paper compares with;
    - otherwise `final_label`, XSTest's compliance annotation: a response is unsafe when it fully
      complies (`1_full_compliance`) with an unsafe prompt (`type` starting with `contrast`, or a
      prompt `label` of unsafe); refusals and anything answering a safe prompt are safe.
    """
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt):
            continue
        response = optional_text(row, "response", "completion")
        if response is None:
            raise DataFormatError(f"{where}: missing 'response'/'completion'")
        kind = str(row.get("type") or "")
        raw = optional_text(row, "harmfulness")
        if raw is None and str(row.get("label", "")).strip().lower() in {"harmful", "unharmful"}:
            raw = str(row["label"])
        verdict: Label
        if raw is not None:
            verdict = label(raw, where)
        elif row.get("final_label"):
            prompt_unsafe = kind.startswith("contrast") or str(row.get("label", "")).strip() in {
                "unsafe"
            }
            complied = str(row["final_label"]).strip().startswith("1")
            verdict = "unsafe" if prompt_unsafe and complied else "safe"
        else:
            raise DataFormatError(f"{where}: neither 'harmfulness', 'label' nor 'final_label'")
        meta = {"type": kind} if kind else {}
        yield Record("xstest-response", index, str(prompt), verdict, response, meta=meta)


OrBenchSubset = Literal["hard", "toxic"]


def orbench_subset(path: Path, subset: str | None = None) -> OrBenchSubset:
    """`subset`, or the one the file name says (`or-bench-hard-1k…`, `or-bench-toxic…`)."""
    if subset is None:
        name = path.name.lower()
        subset = "toxic" if "toxic" in name else "hard" if "hard" in name else None
    if subset == "hard":
        return "hard"
    if subset == "toxic":
        return "toxic"
    raise DataFormatError(f"{path}: OR-Bench subset must be 'hard' or 'toxic' (got {subset!r})")


def read_orbench(path: Path, subset: str | None = None) -> Iterator[Record]:
    """OR-Bench: hard-1k (seemingly toxic but benign) -> safe, toxic -> unsafe."""
    chosen = orbench_subset(path, subset)
    verdict: Label = "unsafe" if chosen == "toxic" else "safe"
    for index, row in enumerate(read_rows(path)):
        prompt = column(row, "prompt", path, index)
        category = column(row, "category", path, index)
        if present(prompt):
            yield Record(
                f"orbench-{chosen}", index, str(prompt), verdict, meta={"category": category}
            )


def read_pku_saferlhf(path: Path) -> Iterator[Record]:
    """PKU-SafeRLHF: two response-level records per row (parts `-r0`, `-r1`)."""
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt = column(row, "prompt", path, index)
        if not present(prompt):
            continue
        for which in (0, 1):
            response = column(row, f"response_{which}", path, index)
            if present(response):
                safe = flag(column(row, f"is_response_{which}_safe", path, index), where)
                yield Record(
                    "pku-saferlhf", index, str(prompt), "safe" if safe else "unsafe",
                    str(response), part=f"-r{which}",
                )  # fmt: skip


def read_beavertails(path: Path) -> Iterator[Record]:
    for index, row in enumerate(read_rows(path)):
        where = _where(path, index)
        prompt, response = column(row, "prompt", path, index), column(row, "response", path, index)
        if present(prompt) and present(response):
            safe = flag(column(row, "is_safe", path, index), where)
            verdict: Label = "safe" if safe else "unsafe"
            yield Record("beavertails", index, str(prompt), verdict, str(response))
