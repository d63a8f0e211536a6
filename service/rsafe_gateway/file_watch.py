"""Hot reload of configuration files (the policy folders, the keys file).

A file set's signature is the name, mtime and size of each file: cheap to take, and it changes on
any edit. `stat` follows symlinks, so a Kubernetes ConfigMap update (an atomic symlink swap) shows.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

Signature = tuple[tuple[str, int, int], ...]


def signature_of(paths: Iterable[Path]) -> Signature:
    entries: list[tuple[str, int, int]] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:  # gone: its absence is the change
            continue
        entries.append((str(path), info.st_mtime_ns, info.st_size))
    return tuple(entries)


class FileWatch:
    """Calls `load` when the files `paths()` lists have changed since the last load.

    `load` applies the files, or keeps the previous state and returns False when they are invalid;
    either way the signature is remembered, so the same broken files are not retried every time.
    """

    def __init__(self, paths: Callable[[], Iterable[Path]], load: Callable[[], bool]) -> None:
        self._paths = paths
        self._load = load
        self._seen = signature_of(paths())

    @property
    def up_to_date(self) -> bool:
        """Whether the last load (or rejected load) saw the files as they are now."""
        return signature_of(self._paths()) == self._seen

    def reload(self) -> bool:
        signature = signature_of(self._paths())
        loaded = self._load()
        self._seen = signature
        return loaded

    def reload_if_changed(self) -> bool:
        if self.up_to_date:
            return False
        return self.reload()

    async def watch(self, interval_seconds: float) -> None:
        """Reload whenever a file is added, changed or removed (runs until cancelled)."""
        while True:
            await asyncio.sleep(interval_seconds)
            self.reload_if_changed()
