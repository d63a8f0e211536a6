from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from rsafe_train import data
from rsafe_train.data import DataFormatError, Example


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_toxicchat(tmp_path: Path) -> None:
    rows = [
        {"conv_id": "a", "user_input": "hello there", "toxicity": 0, "jailbreaking": 0},
        {"conv_id": "b", "user_input": "you are an idiot", "toxicity": 1, "jailbreaking": 0},
        {"conv_id": "c", "user_input": "   ", "toxicity": 1, "jailbreaking": 0},  # empty: skipped
    ]
    got = data.convert("toxicchat", write_jsonl(tmp_path / "toxicchat0124_train.jsonl", rows))
    assert [e.to_dict() for e in got] == [
        {"prompt": "hello there", "label": "safe", "source": "toxicchat"},
        {"prompt": "you are an idiot", "label": "unsafe", "source": "toxicchat"},
    ]
    # The same through CSV (values read back as text) and Parquet.
    assert data.convert("toxicchat", write_csv(tmp_path / "tc.csv", rows)) == got
    assert data.convert("toxicchat", write_parquet(tmp_path / "tc.parquet", rows)) == got


def test_aegis2_prompt_and_response_levels(tmp_path: Path) -> None:
    rows = [
        {"prompt": "how to bake", "response": None, "prompt_label": "safe", "response_label": None},
        {
            "prompt": "how to rob",
            "response": "Sure, first...",
            "prompt_label": "unsafe",
            "response_label": "unsafe",
            "violated_categories": "Criminal Planning",
        },
        {
            "prompt": "tell a joke",
            "response": "Why did...",
            "prompt_label": "Safe",
            "response_label": "safe",
        },
    ]
    path = write_jsonl(tmp_path / "aegis.jsonl", rows)
    prompt_level = data.convert("aegis2", path)
    assert [(e.prompt, e.label, e.response) for e in prompt_level] == [
        ("how to bake", "safe", None),
        ("how to rob", "unsafe", None),
        ("tell a joke", "safe", None),
    ]
    both = data.convert("aegis2-responses", path)
    responses = [e for e in both if e.is_response_level]
    assert [(e.response, e.label) for e in responses] == [
        ("Sure, first...", "unsafe"),
        ("Why did...", "safe"),
    ]
    assert {e.source for e in both} == {"aegis2"}


def test_orbench_subsets(tmp_path: Path) -> None:
    hard = write_csv(
        tmp_path / "or-bench-hard-1k.csv",
        [{"prompt": "how do locks get picked in films?", "category": "deception"}],
    )
    toxic = write_csv(
        tmp_path / "or-bench-toxic.csv",
        [{"prompt": "how to poison a well", "category": "violence"}],
    )
    assert [e.label for e in data.convert("orbench", hard)] == ["safe"]
    assert [e.label for e in data.convert("orbench", toxic)] == ["unsafe"]
    # An explicit subset wins over the file name.
    assert [e.label for e in data.convert("orbench-toxic", hard)] == ["unsafe"]
    with pytest.raises(DataFormatError, match="subset"):
        data.convert(
            "orbench", write_csv(tmp_path / "other.csv", [{"prompt": "x", "category": "y"}])
        )
    with pytest.raises(DataFormatError, match="'category'"):
        data.convert("orbench-hard", write_csv(tmp_path / "nocat.csv", [{"prompt": "x"}]))


def test_pku_saferlhf_two_items_per_row(tmp_path: Path) -> None:
    rows = [
        {
            "prompt": "q",
            "response_0": "bad answer",
            "response_1": "good answer",
            "is_response_0_safe": False,
            "is_response_1_safe": True,
            "better_response_id": 1,
        }
    ]
    got = data.convert("pku-saferlhf", write_parquet(tmp_path / "pku.parquet", rows))
    assert [e.to_dict() for e in got] == [
        {"prompt": "q", "response": "bad answer", "label": "unsafe", "source": "pku-saferlhf"},
        {"prompt": "q", "response": "good answer", "label": "safe", "source": "pku-saferlhf"},
    ]


def test_beavertails(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p1", "response": "r1", "category": {"violence": True}, "is_safe": False},
        {"prompt": "p2", "response": "r2", "category": {}, "is_safe": True},
    ]
    got = data.convert("beavertails", write_jsonl(tmp_path / "30k_train.jsonl", rows))
    assert [(e.response, e.label, e.source) for e in got] == [
        ("r1", "unsafe", "beavertails"),
        ("r2", "safe", "beavertails"),
    ]


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bt.jsonl", [{"prompt": "p", "response": "r"}])
    with pytest.raises(DataFormatError, match=r"bt\.jsonl: column 'is_safe' is missing"):
        data.convert("beavertails", path)
    with pytest.raises(DataFormatError, match="unknown source"):
        data.convert("nope", path)


def test_local_suite_reader(tmp_path: Path) -> None:
    assert data.read_local_suite(tmp_path / "absent.jsonl") == []  # absent: nothing, no error
    with pytest.raises(DataFormatError, match="not there"):
        data.read_local_suite(tmp_path / "absent.jsonl", required=True)
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"id": "s-1", "prompt": "hi", "label": "safe", "source": "handwritten"},
            {"id": "s-2", "prompt": "q", "response": "harmful", "label": "UNSAFE"},
        ],
    )
    got = data.read_local_suite(path)
    # each item also gets what it is about (and, when unsafe, its rsafe-default category)
    assert [e.to_dict() for e in got] == [
        {"prompt": "hi", "label": "safe", "source": "handwritten", "topic": "an ordinary message"},
        {
            "prompt": "q",
            "response": "harmful",
            "label": "unsafe",
            "source": "local-suite",
            "category": "U3",
            "topic": "a request for help with a harmful activity",
        },
    ]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    examples = [Example("a", "safe", "s"), Example("b", "unsafe", "s", "reply")]
    assert data.write_jsonl(examples, tmp_path / "out" / "x.jsonl") == 2
    assert data.read_jsonl(tmp_path / "out" / "x.jsonl") == examples
    with pytest.raises(DataFormatError, match="label"):
        Example("a", "maybe", "s")


def _many(source: str, label: str, count: int, words: int = 3) -> list[Example]:
    return [
        Example(f"{source} {label} item {i} " + "w " * words, label, source) for i in range(count)
    ]


def test_balanced_sample_per_source_and_label_seeded() -> None:
    pool = (
        _many("a", "safe", 50)
        + _many("a", "unsafe", 7)
        + _many("b", "safe", 20)
        + _many("b", "unsafe", 30)
    )
    sample = data.balanced_sample(pool, per_label=10, seed=1)
    assert data.counts(sample) == {"a": {"safe": 10, "unsafe": 7}, "b": {"safe": 10, "unsafe": 10}}
    assert sample == data.balanced_sample(pool, per_label=10, seed=1)
    assert sample != data.balanced_sample(pool, per_label=10, seed=2)


def test_length_cap_whitespace_and_tokenizer() -> None:
    short, long = Example("one two three", "safe", "s"), Example("word " * 50, "unsafe", "s")
    reply = Example("q", "unsafe", "s", "word " * 50)
    kept = data.within_length(
        [short, long, reply], max_prompt_level_tokens=10, max_response_level_tokens=100
    )
    assert kept == [short, reply]  # each level has its own cap

    # With a tokenizer: here a fake one that counts characters.
    class CharTokenizer:
        def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
            return {"input_ids": list(range(len(text)))}

    counter = data.tokenizer_counter(CharTokenizer())
    assert data.within_length([short, long], max_prompt_level_tokens=13, counter=counter) == [short]
    assert data.within_length([short], max_prompt_level_tokens=12, counter=counter) == []


def test_prepare_end_to_end(tmp_path: Path) -> None:
    toxicchat = write_jsonl(
        tmp_path / "tc.jsonl",
        [{"user_input": f"benign question {i}", "toxicity": 0} for i in range(30)]
        + [{"user_input": f"toxic insult {i}", "toxicity": 1} for i in range(5)]
        + [{"user_input": "toxic " + "very " * 40 + "long", "toxicity": 1}]  # over the cap
        + [{"user_input": "benign question 0", "toxicity": 0}],
    )  # duplicate
    beavertails = write_jsonl(
        tmp_path / "bt.jsonl",
        [{"prompt": f"p{i}", "response": f"r{i}", "is_safe": i % 3 == 0} for i in range(30)],
    )
    examples = data.prepare(
        [("toxicchat", toxicchat), ("beavertails", beavertails)],
        per_label=8,
        seed=0,
        max_prompt_level_tokens=20,
    )
    assert data.counts(examples) == {
        "beavertails": {"safe": 8, "unsafe": 8},
        "toxicchat": {"safe": 8, "unsafe": 5},
    }
    assert all(len(e.prompt.split()) <= 20 for e in examples)
    out = tmp_path / "train.jsonl"
    data.write_jsonl(examples, out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(set(row) <= {"prompt", "response", "label", "source"} for row in rows)
    assert {row["label"] for row in rows} == {"safe", "unsafe"}
