"""Stage 2's prompt filter: items rated by sampling, the mixed groups kept, labels balanced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rsafe_train.config import GRPOSettings
from rsafe_train.data import Example, read_jsonl
from rsafe_train.pass_rate import (
    Rated,
    balanced_candidates,
    choice_texts,
    rate,
    request_body,
    select_mixed,
    summary,
    write_rated,
)

RIGHT_UNSAFE = "<think>harmful</think>\\boxed{unsafe}"
RIGHT_SAFE = "<think>harmless</think>\\boxed{safe}"
MALFORMED = "\\boxed{unsafe}"  # no reasoning: the accuracy reward is 0 whatever the label


def _pool() -> list[Example]:
    return [Example(f"harm {i}", "unsafe", "s") for i in range(10)] + [
        Example(f"fine {i}", "safe", "s") for i in range(4)
    ]


def test_candidates_are_drawn_per_label_and_seeded() -> None:
    chosen = balanced_candidates(_pool(), per_label=3, seed=1)
    assert [e.label for e in chosen].count("unsafe") == 3
    assert [e.label for e in chosen].count("safe") == 3
    assert balanced_candidates(_pool(), per_label=3, seed=1) == chosen
    # a label with fewer items than asked gives all it has
    assert [e.label for e in balanced_candidates(_pool(), 9, 0)].count("safe") == 4


def test_the_request_samples_one_group_with_stage_2s_settings() -> None:
    settings = GRPOSettings(num_generations=4, temperature=1.0, top_p=0.9,
                            repetition_penalty=1.05, max_completion_length=128)  # fmt: skip
    body = request_body("guard", [{"role": "user", "content": "x"}], settings, seed=7)
    assert body["n"] == 4
    assert (body["temperature"], body["top_p"], body["repetition_penalty"]) == (1.0, 0.9, 1.05)
    assert body["max_tokens"] == 128
    assert body["seed"] == 7
    assert body["model"] == "guard"
    assert "seed" not in request_body("guard", [], settings)  # unseeded: vLLM's batched sampler


def test_choices_are_read_in_order_and_a_null_content_is_empty() -> None:
    response = {"choices": [{"message": {"content": "a"}}, {"message": {"content": None}}]}
    assert choice_texts(response) == ["a", ""]


def test_rate_marks_each_answer_with_the_rule_based_reward() -> None:
    examples = [Example("harm", "unsafe", "s"), Example("fine", "safe", "s")]
    answers = {
        "harm": [RIGHT_UNSAFE, RIGHT_SAFE, MALFORMED, RIGHT_UNSAFE],  # 2 of 4 right
        "fine": [RIGHT_SAFE] * 4,
    }
    seen: list[dict[str, Any]] = []

    def post(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        seen.append(body)
        assert url == "http://vllm:8000/v1/chat/completions"
        texts = answers[body["messages"][0]["content"]]
        return {"choices": [{"message": {"content": text}} for text in texts]}

    rated = rate(
        examples,
        lambda e: [{"role": "user", "content": e.prompt}],
        GRPOSettings(),
        base_url="http://vllm:8000/v1/",
        model="m",
        seed=10,
        post=post,
    )
    assert [(r.correct, r.samples) for r in rated] == [(2, 4), (4, 4)]
    assert [r.mixed for r in rated] == [True, False]
    assert rated[0].pass_rate == 0.5
    assert sorted(body["seed"] for body in seen) == [10, 11]  # one seed per item


def test_only_mixed_groups_are_kept_with_as_many_safe_as_unsafe() -> None:
    rated = [Rated(Example(f"harm {i}", "unsafe", "s"), 1 + i % 3, 4) for i in range(9)]
    rated += [Rated(Example(f"fine {i}", "safe", "s"), i % 5, 4) for i in range(10)]
    # unsafe: correct 1,2,3 repeating: all 9 mixed; safe: 0..4: 6 of 10 mixed (1, 2, 3)
    chosen = select_mixed(rated, per_label=None, seed=0)
    assert [e.label for e in chosen].count("unsafe") == 6
    assert [e.label for e in chosen].count("safe") == 6
    mixed_prompts = {r.example.prompt for r in rated if r.mixed}
    assert {e.prompt for e in chosen} <= mixed_prompts
    assert len(select_mixed(rated, per_label=2, seed=0)) == 4
    assert summary(rated)["safe"] == {
        "all right": 2, "all wrong": 2, "mixed": 6, "pass rate": 20 / 40,
    }  # fmt: skip


def test_rated_file_reads_back_as_training_examples(tmp_path: Path) -> None:
    rated = [Rated(Example("harm", "unsafe", "s", policy="P"), 3, 4)]
    path = tmp_path / "rated.jsonl"
    write_rated(rated, path)
    record = json.loads(path.read_text())
    assert (record["correct"], record["samples"]) == (3, 4)
    assert read_jsonl(path) == [rated[0].example]
