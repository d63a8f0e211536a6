"""Give freed heap memory back to the operating system (glibc's `malloc_trim`).

glibc keeps memory that Python freed in its heap for reuse, so a burst of large buffers (a flood
of half-sent uploads, say) can leave the process's RSS at its peak long after the buffers are
gone. Trimming after such a burst hands the free pages back. A no-op where the C library has no
`malloc_trim` (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _malloc_trim()


def give_back_free_memory() -> None:
    """Return the heap's free pages to the OS (takes a few ms on a large heap: not per request)."""
    if _TRIM is not None:
        _TRIM(0)
