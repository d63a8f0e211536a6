"""The one dataset-reader library (rsafe_core.datasets) that `rsafe eval` and `rsafe-train
prepare-data` both read with: what the two used to do differently is decided here, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rsafe_core import datasets
from rsafe_core.datasets import DataFormatError, Record


def jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_aegis2_levels_in_row_order_and_redacted_rows_skipped(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "aegis.jsonl",
        [
            {"prompt": "REDACTED", "prompt_label": "unsafe", "response": "x", "response_label": "unsafe"},
            {"prompt": "how to rob", "prompt_label": "unsafe", "response": "No.", "response_label": "safe"},
            {"prompt": "hi", "prompt_label": "", "response": None, "response_label": None},
        ],
    )  # fmt: skip
    records = list(datasets.read_aegis2(path, ("prompt", "response")))
    assert [(r.source, r.row, r.label, r.response) for r in records] == [
        ("aegis2-prompt", 1, "unsafe", None),
        ("aegis2-response", 1, "safe", "No."),
    ]  # the withheld prompt is read by neither level; an unlabelled level gives no record
    assert records[0].id == "aegis2-prompt-000001"


def test_blank_text_skipped_missing_column_named_with_its_row(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "bt.jsonl",
        [{"prompt": "  ", "response": "r", "is_safe": True}, {"prompt": "p", "response": "r"}],
    )
    with pytest.raises(DataFormatError, match=r"bt\.jsonl: column 'is_safe' is missing \(row 1;"):
        list(datasets.read_beavertails(path))
    assert isinstance(DataFormatError("x"), ValueError)  # what both callers catch


def test_texts_kept_verbatim_and_two_records_per_pku_row(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "pku.jsonl",
        [{"prompt": " q ", "response_0": "a ", "response_1": "", "is_response_0_safe": "false",
          "is_response_1_safe": 1}],
    )  # fmt: skip
    assert list(datasets.read_pku_saferlhf(path)) == [
        Record("pku-saferlhf", 0, " q ", "unsafe", "a ", part="-r0")
    ]  # the blank second response gives no record


def test_orbench_subset_from_the_file_name_or_given(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "or-bench-hard-1k.jsonl", [{"prompt": "p", "category": "deception"}])
    assert [(r.source, r.label) for r in datasets.read_orbench(path)] == [("orbench-hard", "safe")]
    assert [r.label for r in datasets.read_orbench(path, "toxic")] == ["unsafe"]
    with pytest.raises(DataFormatError, match="subset"):
        list(datasets.read_orbench(jsonl(tmp_path / "other.jsonl", [])))


def test_json_wrappers_and_unknown_file_types(tmp_path: Path) -> None:
    wrapped = tmp_path / "tc.json"
    wrapped.write_text(json.dumps({"rows": [{"user_input": "hi", "toxicity": "0"}]}))
    assert [r.label for r in datasets.read_toxicchat(wrapped)] == ["safe"]
    with pytest.raises(DataFormatError, match="no such file"):
        list(datasets.read_rows(tmp_path / "absent.jsonl"))
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        list(datasets.read_rows(tmp_path / "x.xlsx"))
