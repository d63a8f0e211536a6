"""scripts/training-state.sh: a run's newest checkpoint goes into models/training-state/ and comes
back on a machine whose artifacts/ is empty, but never over a newer local checkpoint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "training-state.sh", root / "scripts")
    return root


def _checkpoint(root: Path, stage: str, step: int, marker: str) -> None:
    folder = root / "artifacts" / "smollm2-rsafe" / stage / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "optimizer.pt").write_text(marker)
    (folder / "tokenizer.json").write_text("{}")


def _run(root: Path, verb: str) -> str:
    done = subprocess.run(
        ["bash", "scripts/training-state.sh", verb], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_save_then_restore_on_an_empty_machine(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    for step in (2, 10, 9):
        _checkpoint(root, "sft", step, f"step {step}")
    run = root / "artifacts" / "smollm2-rsafe" / "sft"
    (run / "metrics.jsonl").write_text('{"step": 10}\n')
    _run(root, "save")
    saved = root / "models" / "training-state" / "sft"
    assert sorted(p.name for p in saved.iterdir()) == ["checkpoint-10", "metrics.jsonl"]
    assert not (saved / "checkpoint-10" / "tokenizer.json").exists()  # rebuilt from the GGUF
    shutil.rmtree(root / "artifacts")
    _run(root, "restore")
    assert (run / "checkpoint-10" / "optimizer.pt").read_text() == "step 10"
    assert (run / "metrics.jsonl").read_text() == '{"step": 10}\n'


def test_restore_keeps_a_newer_local_checkpoint(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _checkpoint(root, "sft", 10, "old")
    _run(root, "save")
    _checkpoint(root, "sft", 20, "newer")
    out = _run(root, "restore")
    assert "kept" in out
    run = root / "artifacts" / "smollm2-rsafe" / "sft"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint-10", "checkpoint-20"]


def test_a_finished_stage_travels_as_its_adapter_alone(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    _checkpoint(root, "sft", 200, "optimizer state")
    run = root / "artifacts" / "smollm2-rsafe" / "sft"
    (run / "adapter").mkdir()
    (run / "adapter" / "adapter_config.json").write_text('{"r": 16}')
    (run / "adapter" / "tokenizer.json").write_text("{}")
    (run / "metrics.jsonl").write_text('{"step": 204}\n')
    _run(root, "save")
    saved = root / "models" / "training-state" / "sft"
    assert sorted(p.name for p in saved.iterdir()) == ["adapter", "metrics.jsonl"]
    assert sorted(p.name for p in (saved / "adapter").iterdir()) == ["adapter_config.json"]
    shutil.rmtree(root / "artifacts")
    out = _run(root, "restore")
    assert "restored its finished adapter" in out
    assert (run / "adapter" / "adapter_config.json").read_text() == '{"r": 16}'
    assert not any(run.glob("checkpoint-*"))
    assert "finished here already" in _run(root, "restore")


def test_a_data_stage_is_carried_as_its_jsonl_files(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    folder = root / "artifacts" / "smollm2-rsafe" / "round8" / "pass-rates"
    folder.mkdir(parents=True)
    (folder / "mixed.jsonl").write_text('{"prompt": "p", "label": "safe"}\n')
    (folder / "vllm.log").write_text("not carried")
    assert "round8/pass-rates: saved its data" in _run(root, "save")
    shutil.rmtree(root / "artifacts")
    assert "round8/pass-rates: restored its data" in _run(root, "restore")
    assert (folder / "mixed.jsonl").read_text() == '{"prompt": "p", "label": "safe"}\n'
    assert not (folder / "vllm.log").exists()
    (folder / "mixed.jsonl").write_text("local\n")
    assert "its data is here already; kept" in _run(root, "restore")  # never overwritten
    assert (folder / "mixed.jsonl").read_text() == "local\n"
