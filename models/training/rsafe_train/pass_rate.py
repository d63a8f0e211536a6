"""Stage 2's prompt filter: each item's pass rate under the sampling GRPO will use.

GRPO learns only from groups whose completions disagree: when all of a group's samples are right
(or all wrong) every advantage is zero and the step spends its compute on nothing. DAPO's dynamic
sampling drops such groups online and draws again; on this CPU, where one step costs about a
minute, that filter runs once, before the stage: the starting checkpoint (merged, served by vLLM
or any OpenAI-compatible server) answers each candidate `num_generations` times with stage 2's
own sampling settings, the rule-based reward marks each answer, and the items whose group is
mixed (some right, some wrong) become stage 2's prompts, as many gold-unsafe as gold-safe.

The HTTP exchange is the stdlib's (no client library in the training environment for one POST);
the choice of items is plain Python.
"""

from __future__ import annotations

import json
import math
import random
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsafe_train.config import GRPOSettings
from rsafe_train.data import SAFE, UNSAFE, Example
from rsafe_train.reward import accuracy_reward


@dataclass(frozen=True)
class Rated:
    example: Example
    correct: int
    samples: int

    @property
    def pass_rate(self) -> float:
        return self.correct / self.samples

    @property
    def mixed(self) -> bool:
        """Some answers right and some wrong: a group GRPO can learn from."""
        return 0 < self.correct < self.samples

    def to_dict(self) -> dict[str, Any]:
        return {**self.example.to_dict(), "correct": self.correct, "samples": self.samples}


def balanced_candidates(examples: Sequence[Example], per_label: int, seed: int) -> list[Example]:
    """Up to `per_label` gold-unsafe and as many gold-safe examples, each drawn at random
    (seeded), the two lists concatenated (the order does not matter: every item is rated)."""
    rng = random.Random(seed)
    chosen: list[Example] = []
    for label in (UNSAFE, SAFE):
        pool = [example for example in examples if example.label == label]
        chosen += rng.sample(pool, min(per_label, len(pool)))
    return chosen


def request_body(
    model: str, messages: list[dict[str, str]], settings: GRPOSettings, seed: int | None = None
) -> dict[str, Any]:
    """A chat-completions request sampling one GRPO group with stage 2's settings
    (`repetition_penalty` is vLLM's extension of the OpenAI schema); seeded on request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "n": settings.num_generations,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "repetition_penalty": settings.repetition_penalty,
        "max_tokens": settings.max_completion_length,
    }
    if seed is not None:
        body["seed"] = seed
    return body


def choice_texts(response: dict[str, Any]) -> list[str]:
    return [str(choice["message"].get("content") or "") for choice in response["choices"]]


def post_json(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def rate(
    examples: Sequence[Example],
    messages_for: Callable[[Example], list[dict[str, str]]],
    settings: GRPOSettings,
    *,
    base_url: str,
    model: str,
    seed: int | None = None,
    workers: int = 8,
    timeout: float = 600.0,
    post: Callable[[str, dict[str, Any], float], dict[str, Any]] = post_json,
) -> list[Rated]:
    """Each example answered `settings.num_generations` times by the server at `base_url`
    (".../v1"), in the input's order; `workers` requests in flight keep vLLM's batch full;
    `seed`: item i's request carries seed + i (reproducible, slower)."""
    url = base_url.rstrip("/") + "/chat/completions"

    def one(index: int) -> Rated:
        example = examples[index]
        item_seed = None if seed is None else seed + index
        body = request_body(model, messages_for(example), settings, item_seed)
        answers = choice_texts(post(url, body, timeout))
        correct = sum(accuracy_reward(answer, example.label) == 1.0 for answer in answers)
        return Rated(example, correct, len(answers))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, range(len(examples))))


def select_mixed(rated: Sequence[Rated], per_label: int | None, seed: int) -> list[Example]:
    """The mixed items, as many gold-unsafe as gold-safe (the larger side sampled down, seeded;
    at most `per_label` each)."""
    rng = random.Random(seed)
    by_label = {
        label: [r.example for r in rated if r.mixed and r.example.label == label]
        for label in (UNSAFE, SAFE)
    }
    size = min(len(items) for items in by_label.values())
    if per_label is not None:
        size = min(size, per_label)
    return [example for items in by_label.values() for example in rng.sample(items, size)]


def write_rated(rated: Sequence[Rated], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in rated))


def summary(rated: Sequence[Rated]) -> dict[str, dict[str, float]]:
    """Per label: items all right, all wrong and mixed, and the mean pass rate (the expected
    accuracy reward of one sampled answer)."""
    table: dict[str, dict[str, float]] = {}
    for label in (UNSAFE, SAFE):
        mine = [r for r in rated if r.example.label == label]
        table[label] = {
            "all right": sum(r.correct == r.samples for r in mine),
            "all wrong": sum(r.correct == 0 for r in mine),
            "mixed": sum(r.mixed for r in mine),
            "pass rate": sum(r.pass_rate for r in mine) / len(mine) if mine else math.nan,
        }
    return table
