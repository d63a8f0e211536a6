from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
# Importable without the editable installs too (the gateway's modules and rsafe_train).
for path in (REPO_ROOT / "service", REPO_ROOT / "models" / "training"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
