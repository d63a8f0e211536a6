"""The file watcher behind the policy and keys hot reload: a change loads once, a rejected edit
is remembered (not retried every interval), a removed file is a change too."""

from __future__ import annotations

import os
from pathlib import Path

from rsafe_gateway.file_watch import FileWatch


def _touch(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))  # a distinct mtime even on a coarse clock


def test_a_change_loads_once_and_a_rejected_edit_is_not_retried(tmp_path: Path) -> None:
    watched = tmp_path / "keys.yaml"
    _touch(watched, "v1", 1_000_000_000)
    results = [True, False]
    loads: list[str] = []

    def load() -> bool:
        loads.append(watched.read_text())
        return results.pop(0)

    files = FileWatch(lambda: [watched], load)
    assert files.up_to_date
    assert files.reload_if_changed() is False and loads == []
    _touch(watched, "v2", 2_000_000_000)
    assert not files.up_to_date
    assert files.reload_if_changed() is True and loads == ["v2"]
    _touch(watched, "broken", 3_000_000_000)
    assert files.reload_if_changed() is False and loads == ["v2", "broken"]  # rejected
    assert files.up_to_date  # remembered: the next check does not load it again
    assert files.reload_if_changed() is False and loads == ["v2", "broken"]


def test_a_removed_file_is_a_change(tmp_path: Path) -> None:
    watched = tmp_path / "policy.md"
    _touch(watched, "x", 1_000_000_000)
    loads: list[int] = []

    def load() -> bool:
        loads.append(1)
        return True

    files = FileWatch(lambda: sorted(tmp_path.glob("*.md")), load)
    watched.unlink()
    assert files.reload_if_changed() is True
    assert loads == [1]
