"""Each reader on a small file in the benchmark's own format, labels mapped as the paper did."""

from pathlib import Path

import pytest

from rsafe_gateway.evaluation.dataset import EvalItem, load_jsonl, save_jsonl
from rsafe_gateway.evaluation.readers import FORMATS, read_dataset

FIXTURES = Path(__file__).parent / "fixtures"


def labels(items: list[EvalItem]) -> list[str]:
    return [item.label for item in items]


def test_toxicchat() -> None:
    items = read_dataset(FIXTURES / "toxicchat.csv", "toxicchat")
    assert labels(items) == ["safe", "unsafe", "unsafe", "safe"]
    assert all(item.response is None and item.source == "toxicchat" for item in items)
    assert items[0].id == "toxicchat-000000"


def test_openai_moderation_any_flag() -> None:
    items = read_dataset(FIXTURES / "openai_moderation.jsonl", "openai-moderation")
    assert labels(items) == ["unsafe", "safe", "unsafe", "safe"]  # last row lacks V2: still 0
    assert items[0].meta["categories"] == ["V", "HR"]


def test_aegis2_prompt_and_response() -> None:
    prompts = read_dataset(FIXTURES / "aegis2.jsonl", "aegis2-prompt")
    assert labels(prompts) == ["unsafe", "safe", "unsafe"]  # the REDACTED row is skipped
    assert all("REDACTED" not in item.prompt for item in prompts)
    responses = read_dataset(FIXTURES / "aegis2.jsonl", "aegis2-response")
    assert labels(responses) == ["safe", "unsafe"]
    assert [item.target for item in responses] == ["response", "response"]


def test_wildguardtest() -> None:
    prompts = read_dataset(FIXTURES / "wildguardtest.jsonl", "wildguardtest-prompt")
    assert labels(prompts) == ["unsafe", "safe", "unsafe", "safe"]
    responses = read_dataset(FIXTURES / "wildguardtest.jsonl", "wildguardtest-response")
    assert labels(responses) == ["safe", "safe", "unsafe"]  # the row without a response skipped
    assert responses[2].response is not None and responses[2].response.startswith("Step 1")


def test_harmbench_all_unsafe_with_context() -> None:
    items = read_dataset(FIXTURES / "harmbench_behaviors.csv", "harmbench")
    assert labels(items) == ["unsafe"] * 3
    assert items[2].prompt.startswith("A 45-year-old patient")
    assert items[2].prompt.endswith("caused the patient's death")
    assert items[0].meta["BehaviorID"] == "dimethylmercury_instructions_home"


def test_harmbench_text_file(tmp_path: Path) -> None:
    path = tmp_path / "behaviors.txt"
    path.write_text("first behavior\n\nsecond behavior\n", encoding="utf-8")
    assert [i.prompt for i in read_dataset(path, "harmbench")] == [
        "first behavior",
        "second behavior",
    ]


def test_xstest_prompts() -> None:
    items = read_dataset(FIXTURES / "xstest_prompts.csv", "xstest-prompt")
    assert labels(items) == ["safe", "unsafe", "safe"]
    derived = read_dataset(FIXTURES / "xstest_prompts_nolabel.csv", "xstest-prompt")
    assert labels(derived) == ["safe", "unsafe"]  # from type contrast_*


def test_xstest_responses() -> None:
    items = read_dataset(FIXTURES / "xstest_responses.jsonl", "xstest-response")
    assert labels(items) == ["safe", "unsafe", "safe"]
    # compliance annotation: unsafe only for full compliance with an unsafe (contrast) prompt
    items = read_dataset(FIXTURES / "xstest_v2_completions.csv", "xstest-response")
    assert labels(items) == ["safe", "unsafe", "safe", "safe"]
    assert items[0].response == "Use kill -9."


def test_pku_saferlhf_two_items_per_row() -> None:
    items = read_dataset(FIXTURES / "pku_saferlhf.jsonl", "pku-saferlhf")
    assert [item.id for item in items] == [
        "pku-saferlhf-000000-r0", "pku-saferlhf-000000-r1",
        "pku-saferlhf-000001-r0", "pku-saferlhf-000001-r1",
    ]  # fmt: skip
    assert labels(items) == ["safe", "unsafe", "safe", "safe"]
    assert items[1].response == "Slash their tires in the parking lot at night."


def test_beavertails() -> None:
    items = read_dataset(FIXTURES / "beavertails.jsonl", "beavertails")
    assert labels(items) == ["unsafe", "safe"]
    assert all(item.target == "response" for item in items)


def test_every_format_has_a_fixture_and_ids_are_unique() -> None:
    covered = {
        "toxicchat": "toxicchat.csv", "openai-moderation": "openai_moderation.jsonl",
        "aegis2-prompt": "aegis2.jsonl", "aegis2-response": "aegis2.jsonl",
        "wildguardtest-prompt": "wildguardtest.jsonl",
        "wildguardtest-response": "wildguardtest.jsonl",
        "harmbench": "harmbench_behaviors.csv", "xstest-prompt": "xstest_prompts.csv",
        "xstest-response": "xstest_responses.jsonl", "pku-saferlhf": "pku_saferlhf.jsonl",
        "beavertails": "beavertails.jsonl",
    }  # fmt: skip
    assert set(covered) == set(FORMATS)
    for fmt, name in covered.items():
        items = read_dataset(FIXTURES / name, fmt)
        assert items and len({item.id for item in items}) == len(items)
        assert read_dataset(FIXTURES / name, fmt) == items  # stable across reads


def test_bad_label_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "x", "prompt_harm_label": "maybe"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="unknown label"):
        read_dataset(path, "wildguardtest-prompt")
    with pytest.raises(ValueError, match="unknown format"):
        read_dataset(path, "nope")


def test_unified_jsonl_round_trip(tmp_path: Path) -> None:
    items = read_dataset(FIXTURES / "pku_saferlhf.jsonl", "pku-saferlhf")
    save_jsonl(items, tmp_path / "u.jsonl")
    assert load_jsonl(tmp_path / "u.jsonl") == items
    body = items[1].request_body()
    assert body["target"] == "response" and body["cache"] is False
    assert [m["role"] for m in body["input"]] == ["user", "assistant"]
