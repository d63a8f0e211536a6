"""Per-step training metrics: a TRL/transformers callback writing JSONL, and a PNG plot of it;
and the callback that ends a stage at a chosen step."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

# TRL names each reward function's metric after the function.
FORMAT_KEY = "rewards/format_reward_func/mean"
ACCURACY_KEY = "rewards/accuracy_reward_func/mean"
_KEEP = {
    "loss": "loss",
    "grad_norm": "grad_norm",
    "learning_rate": "learning_rate",
    "reward": "reward",
    "reward_std": "reward_std",
    FORMAT_KEY: "format_reward",
    ACCURACY_KEY: "accuracy_reward",
    "frac_reward_zero_std": "frac_reward_zero_std",
    "completions/mean_length": "completion_mean_length",
    "completions/clipped_ratio": "completion_clipped_ratio",
    "kl": "kl",
    "entropy": "entropy",
    "mean_token_accuracy": "mean_token_accuracy",
}


class StopAtStep(TrainerCallback):  # type: ignore[misc]  # untyped in the gateway venv
    """Ends training once the global step reaches `step`; the learning-rate schedule stays the
    one planned for the whole run (unlike `max_steps`, which re-plans it)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


class JsonlMetricsCallback(TrainerCallback):  # type: ignore[misc]  # untyped in the gateway venv
    """One JSON line per logging step: step, epoch and the metrics above (short names).

    A fresh run starts an empty file; a run resumed from the checkpoint of step N keeps the lines
    up to N (the steps after it are trained, and logged, again)."""

    def __init__(self, path: Path, stage: str, resume_step: int | None = None) -> None:
        self.path = path
        self.stage = stage
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = ""
        if resume_step is not None and path.is_file():
            kept = "".join(
                json.dumps(record) + "\n"
                for record in read_metrics(path)
                if record.get("step", 0) <= resume_step
            )
        path.write_text(kept)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not logs or not state.is_world_process_zero:
            return
        record: dict[str, Any] = {
            "stage": self.stage,
            "step": state.global_step,
            "epoch": state.epoch,
            "time": round(time.time(), 1),  # wall clock: s/step and an ETA from the file alone
        }
        for key, name in _KEEP.items():
            value = logs.get(key)
            if isinstance(value, int | float):
                record[name] = float(value)
        if len(record) > 4:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of `path`, one per (stage, step): a resumed run logs again the steps after its
    checkpoint, and the later line wins."""
    records = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    latest: dict[tuple[object, object], int] = {}
    for index, record in enumerate(records):
        if "step" in record:
            latest[(record.get("stage"), record["step"])] = index
    return [
        record
        for index, record in enumerate(records)
        if "step" not in record or latest[(record.get("stage"), record["step"])] == index
    ]


REWARD_SERIES = ("reward", "format_reward", "accuracy_reward")
# GRPO's health per step: shares in [0, 1] on the left axis, the mean length on the right one.
SHARE_SERIES = ("completion_clipped_ratio", "frac_reward_zero_std")
LENGTH_SERIES = "completion_mean_length"


ROLLING_WINDOW = 10  # steps: a step of stage 2 on the CPU judges only a few prompts, so it is noisy


def rolling_mean(values: list[float], window: int = ROLLING_WINDOW) -> list[float]:
    """The mean of each value and the up to `window - 1` values before it."""
    means = []
    for index in range(len(values)):
        recent = values[max(0, index - window + 1) : index + 1]
        means.append(sum(recent) / len(recent))
    return means


def _points(records: list[dict[str, Any]], name: str) -> tuple[list[float], list[float]]:
    pairs = [(float(r["step"]), float(r[name])) for r in records if name in r]
    return [x for x, _ in pairs], [y for _, y in pairs]


def plot_metrics(jsonl: Path, png: Path, title: str = "GRPO rewards") -> Path:
    """Mean, format and accuracy reward per step, and under them the share of clipped
    completions, the share of zero-variance groups and the mean completion length (GRPO);
    the loss when there is no reward (SFT)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    records = read_metrics(jsonl)
    rewards = any(name in r for r in records for name in REWARD_SERIES)
    health = rewards and any(name in r for r in records for name in SHARE_SERIES)
    fig, axes = plt.subplots(
        2 if health else 1, 1, figsize=(7, 6.5 if health else 4), dpi=100, sharex=True,
        squeeze=False,
    )  # fmt: skip
    top = axes[0][0]
    for name in REWARD_SERIES if rewards else ("loss",):
        xs, ys = _points(records, name)
        if xs:
            top.plot(xs, ys, marker="o", markersize=3, label=name)
    if rewards:
        xs, ys = _points(records, "reward")
        if len(xs) > ROLLING_WINDOW:
            top.plot(xs, rolling_mean(ys), color="black", linewidth=2.5,
                     label=f"reward, mean of the last {ROLLING_WINDOW} steps")  # fmt: skip
        top.set_ylim(-0.05, 1.05)
    top.set_ylabel("value")
    top.set_title(title)
    top.grid(alpha=0.3)
    top.legend()
    bottom = axes[-1][0]
    if health:
        for name in SHARE_SERIES:
            xs, ys = _points(records, name)
            if xs:
                bottom.plot(xs, ys, marker="o", markersize=3, label=name)
        bottom.set_ylim(-0.05, 1.05)
        bottom.set_ylabel("share")
        bottom.grid(alpha=0.3)
        xs, ys = _points(records, LENGTH_SERIES)
        if xs:
            right = bottom.twinx()
            right.plot(xs, ys, color="grey", linestyle="--", label="completion tokens (mean)")
            right.set_ylabel("tokens")
            right.legend(loc="upper right")
        bottom.legend(loc="upper left")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_xlabel("optimizer step")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


class RichProgressCallback(TrainerCallback):  # type: ignore[misc]  # untyped in the gateway venv
    """A rich progress bar per stage, with the latest reward (GRPO) or loss (SFT) in its text."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self._progress: Any = None
        self._task: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if not state.is_world_process_zero:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )
        self._progress.start()
        self._task = self._progress.add_task(self.stage, total=state.max_steps, info="")

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=state.global_step)

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if self._progress is None or not logs:
            return
        parts = []
        for key, name in (
            ("reward", "reward"),
            (FORMAT_KEY, "format"),
            (ACCURACY_KEY, "acc"),
            ("loss", "loss"),
        ):
            if isinstance(logs.get(key), int | float):
                parts.append(f"{name} {logs[key]:.3f}")
        if parts:
            self._progress.update(self._task, info="  ".join(parts))

    def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def use_rich_progress(trainer: Any, stage: str) -> None:
    """Swap the trainer's tqdm bar for the rich one."""
    from transformers.trainer_callback import ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(RichProgressCallback(stage))
