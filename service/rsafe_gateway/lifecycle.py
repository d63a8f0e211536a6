"""Process-wide lifecycle flags shared by the server runner and the readiness probe."""

from __future__ import annotations

import threading

# Set on the first SIGTERM: /readyz answers 503 while requests are still served and drained.
DRAINING = threading.Event()
