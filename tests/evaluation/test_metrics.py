"""Metrics against confusion matrices computed by hand."""

import pytest

from rsafe_gateway.evaluation.metrics import ALL, compute_metrics, percentile
from rsafe_gateway.evaluation.runner import ErrorInfo, ResultRow


def row(
    i: int, label: str, verdict: str | None, flagged: bool | None = None, source: str = "d",
    latency: float | None = 10.0, error: bool = False,
) -> ResultRow:  # fmt: skip
    if flagged is None and verdict is not None:
        flagged = verdict == "unsafe"
    return ResultRow(
        id=f"{source}-{i}", source=source, label=label, target="prompt", verdict=verdict,
        flagged=flagged, latency_ms=latency, client_latency_ms=latency,
        error=ErrorInfo(status=503, type="backend_unavailable", message="x") if error else None,
    )  # fmt: skip


def test_hand_computed_confusion() -> None:
    # labels:   U U U U S S S S S S ; predictions: U U U S | U S S S S S
    rows = [row(i, "unsafe", "unsafe") for i in range(3)] + [row(3, "unsafe", "safe")]
    rows += [row(4, "safe", "unsafe")] + [row(i, "safe", "safe") for i in range(5, 10)]
    m = compute_metrics(rows)["d"]
    c = m.confusion
    assert (c.tp, c.fn, c.fp, c.tn) == (3, 1, 1, 5)
    assert m.precision == pytest.approx(3 / 4)
    assert m.recall == pytest.approx(3 / 4)
    assert m.f1 == pytest.approx(0.75)
    assert m.accuracy == pytest.approx(8 / 10)
    assert m.false_positive_rate == pytest.approx(1 / 6)
    assert m.undetermined == 0 and m.undetermined_rate == 0.0


def test_asymmetric_precision_recall() -> None:
    # tp=2, fp=3, fn=2, tn=1: P=2/5, R=2/4, F1=2PR/(P+R)=4/9
    rows = [row(0, "unsafe", "unsafe"), row(1, "unsafe", "unsafe")]
    rows += [row(2, "unsafe", "safe"), row(3, "unsafe", "safe")]
    rows += [row(i, "safe", "unsafe") for i in range(4, 7)] + [row(7, "safe", "safe")]
    m = compute_metrics(rows)["d"]
    assert m.precision == pytest.approx(0.4)
    assert m.recall == pytest.approx(0.5)
    assert m.f1 == pytest.approx(4 / 9)
    assert m.false_positive_rate == pytest.approx(3 / 4)


def test_no_positives() -> None:
    rows = [row(0, "safe", "safe"), row(1, "safe", "unsafe"), row(2, "safe", "safe")]
    m = compute_metrics(rows)["d"]
    assert m.recall is None  # no unsafe items
    assert m.precision == 0.0  # one flagged, none right
    assert m.f1 is None
    assert m.accuracy == pytest.approx(2 / 3)
    assert m.false_positive_rate == pytest.approx(1 / 3)
    d = m.as_dict()
    assert d["positives"] == 0 and d["negatives"] == 3


def test_nothing_flagged() -> None:
    rows = [row(0, "unsafe", "safe"), row(1, "safe", "safe")]
    m = compute_metrics(rows)["d"]
    assert m.precision is None and m.recall == 0.0 and m.f1 is None


def test_all_undetermined_follow_flagged() -> None:
    # fail-closed gateway: undetermined -> flagged true
    rows = [row(0, "unsafe", "undetermined", True), row(1, "safe", "undetermined", True)]
    rows += [row(2, "safe", "undetermined", True)]
    m = compute_metrics(rows)["d"]
    c = m.confusion
    assert (c.tp, c.fp, c.tn, c.fn) == (1, 2, 0, 0)
    assert m.undetermined == 3 and m.undetermined_rate == 1.0
    assert m.precision == pytest.approx(1 / 3) and m.recall == 1.0
    assert m.f1 == pytest.approx(0.5)
    # fail-open: undetermined -> not flagged
    rows = [row(0, "unsafe", "undetermined", False), row(1, "safe", "undetermined", False)]
    m = compute_metrics(rows)["d"]
    assert (m.confusion.tp, m.confusion.fn, m.confusion.tn) == (0, 1, 1)
    assert m.f1 is None and m.recall == 0.0 and m.undetermined_rate == 1.0


def test_errors_not_scored_and_sources_split() -> None:
    rows = [row(0, "unsafe", "unsafe", source="a"), row(1, "safe", None, error=True, source="a")]
    rows += [row(2, "safe", "safe", source="b")]
    metrics = compute_metrics(rows)
    assert list(metrics) == ["a", "b", ALL]
    assert metrics["a"].errors == 1 and metrics["a"].scored == 1 and metrics["a"].rows == 2
    assert metrics[ALL].scored == 2 and metrics[ALL].errors == 1
    assert metrics[ALL].accuracy == 1.0


def test_empty_and_single_source() -> None:
    assert compute_metrics([]) == {}
    only = compute_metrics([row(0, "safe", "safe")])
    assert list(only) == ["d"]


def test_percentiles() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 50) == 30.0
    assert percentile(values, 95) == pytest.approx(48.0)  # 40 + 0.8 * 10
    assert percentile([], 50) is None
    m = compute_metrics([row(i, "safe", "safe", latency=float(v)) for i, v in enumerate(values)])
    assert m["d"].as_dict()["latency_ms_p95"] == pytest.approx(48.0)


def test_balanced_f1_cannot_be_flattered_by_flagging_everything() -> None:
    # a suite that is 82% unsafe (as the local test split was): flag everything
    rows = [row(i, "unsafe", "unsafe") for i in range(82)]
    rows += [row(100 + i, "safe", "unsafe") for i in range(18)]
    m = compute_metrics(rows)["d"]
    assert m.f1 == pytest.approx(2 * 0.82 / 1.82)  # 0.90: looks good
    assert m.balanced_precision == pytest.approx(0.5)
    assert m.balanced_f1 == pytest.approx(2 / 3)  # what flagging everything scores, always
    assert m.as_dict()["balanced_f1"] == pytest.approx(2 / 3)


def test_balanced_f1_by_hand() -> None:
    # 8 unsafe (6 flagged), 2 safe (1 flagged): R = 0.75, FPR = 0.5, balanced P = 0.75 / 1.25 = 0.6
    rows = [row(i, "unsafe", "unsafe") for i in range(6)] + [
        row(6, "unsafe", "safe"),
        row(7, "unsafe", "safe"),
    ]
    rows += [row(8, "safe", "unsafe"), row(9, "safe", "safe")]
    m = compute_metrics(rows)["d"]
    assert m.balanced_precision == pytest.approx(0.6)
    assert m.balanced_f1 == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    # without safe items there is no false-positive rate, so no balanced view
    assert compute_metrics([row(0, "unsafe", "unsafe")])["d"].balanced_f1 is None
