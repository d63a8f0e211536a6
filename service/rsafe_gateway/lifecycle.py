"""The gateway's one draining flag, shared by the server runner and the readiness probe."""

from __future__ import annotations

import threading

# Set by the server runner (`__main__.py`) on the signal that stops the process: /readyz answers
# 503 from then on, while requests are still served and drained. Process-wide: one server, one
# app per process. (The app's own shutdown needs no flag: uvicorn runs it once nothing is served.)
DRAINING = threading.Event()
