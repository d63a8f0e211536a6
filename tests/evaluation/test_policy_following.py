"""The policy-following benchmark file: valid, differing expectations, known policies."""

from collections import Counter

import pytest
from rsafe_core.policy import load_policy_dirs

from rsafe_gateway.evaluation import policy_following as pf
from rsafe_gateway.evaluation.local_suite import REPO
from rsafe_gateway.evaluation.runner import ResultRow
from rsafe_gateway.policy_store import SHIPPED_POLICY_DIR

BENCHMARK = REPO / "data" / "policy-following.jsonl"


def test_benchmark_is_valid() -> None:
    cases = pf.load_benchmark(BENCHMARK)  # schema: ids, >= 2 expectations, safe and unsafe
    assert len(cases) >= 60
    assert pf.validate(cases) == []
    known = set(load_policy_dirs([SHIPPED_POLICY_DIR]))
    used: Counter[str] = Counter()
    for case in cases:
        verdicts = {e.expected for e in case.expectations}
        assert verdicts == {"safe", "unsafe"}, case.id
        for e in case.expectations:
            assert (e.policy_id is None) != (e.policy is None)
            if e.policy_id is not None:
                assert e.policy_id in known
                used[e.policy_id] += 1
            else:
                assert e.policy and len(e.policy) < 16_000
            assert e.why, f"{case.id}: say why"
    # Every shipped policy is exercised, but `qwen3guard`: it names a model's fixed taxonomy, the one
    # family that cannot follow other policies, so there is nothing to swap it against.
    assert set(used) == known - {"qwen3guard"}
    assert sum(1 for c in cases if c.response is not None) >= 15  # response-level entries too
    assert len({c.prompt + (c.response or "") for c in cases}) == len(cases)


def test_validate_catches_problems() -> None:
    case = pf.PolicyCase(
        id="pf-999", topic="t", prompt="p",
        expectations=[pf.Expectation(policy_id="nope", expected="safe"),
                      pf.Expectation(policy="X1 - y", expected="unsafe")],
    )  # fmt: skip
    assert pf.validate([case, case]) == [
        "pf-999: unknown policy_id 'nope'",
        "pf-999: duplicate id",
        "pf-999: unknown policy_id 'nope'",
    ]
    with pytest.raises(ValueError, match="one safe and one unsafe"):
        pf.PolicyCase(id="pf-998", topic="t", prompt="p",
                      expectations=[pf.Expectation(policy_id="a", expected="safe"),
                                    pf.Expectation(policy_id="b", expected="safe")])  # fmt: skip


def test_items_and_scoring() -> None:
    cases = pf.load_benchmark(BENCHMARK)[:2]
    items = pf.to_items(cases)
    assert len(items) == sum(len(c.expectations) for c in cases)
    assert all(i.source == pf.SOURCE and i.id.startswith(f"{i.meta['entry']}@") for i in items)
    rows = [
        ResultRow(id=i.id, source=i.source, label=i.label, target=i.target,
                  policy_id=i.policy_id or "inline", verdict="unsafe", flagged=True)
        for i in items
    ]  # fmt: skip
    score = pf.score(rows)  # always-unsafe: right on exactly the unsafe expectations
    unsafe = sum(1 for i in items if i.label == "unsafe")
    assert score["cases"] == len(items)
    assert score["case_accuracy"] == pytest.approx(unsafe / len(items))
    assert score["entry_accuracy"] == 0.0  # every entry has a safe expectation
    perfect = [r.model_copy(update={"flagged": r.label == "unsafe"}) for r in rows]
    assert pf.score(perfect)["entry_accuracy"] == 1.0
