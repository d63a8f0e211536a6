"""The core is the RSafe method without I/O: no module of it may import a server dependency.

Every `rsafe_core` module is imported in a fresh interpreter whose import system refuses the
server's libraries and the gateway itself, so an indirect import (a core module importing a
helper that imports aiohttp) fails as surely as a direct one.
"""

import shutil
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"

FORBIDDEN = (
    "fastapi",
    "starlette",
    "uvicorn",
    "aiohttp",
    "httpx",
    "redis",
    "prometheus_client",
    "pydantic",
    "pydantic_settings",
    "orjson",
    "rsafe_gateway",
)

PROBE = """
import importlib, importlib.abc, pkgutil, sys

FORBIDDEN = set(sys.argv[1].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"rsafe_core must not import {name}")
        return None

sys.meta_path.insert(0, Refuse())
import rsafe_core
for module in pkgutil.walk_packages(rsafe_core.__path__, "rsafe_core."):
    importlib.import_module(module.name)
    print(module.name)
"""


def import_every_core_module(root: Path = CORE) -> subprocess.CompletedProcess[str]:
    """Run the probe with `root` (the folder holding `rsafe_core`) first on the path."""
    return subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(FORBIDDEN)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_core_imports_no_server_dependency() -> None:
    result = import_every_core_module()
    assert result.returncode == 0, result.stderr
    imported = set(result.stdout.split())
    # The walk really covered the package (a probe that imports nothing proves nothing).
    assert {"rsafe_core.prompt", "rsafe_core.verdict", "rsafe_core.formats.rsafe"} <= imported
    on_disk = {
        "rsafe_core." + ".".join(path.relative_to(CORE / "rsafe_core").with_suffix("").parts)
        for path in (CORE / "rsafe_core").rglob("*.py")
        if path.name != "__init__.py"
    }
    assert on_disk <= imported


def test_the_probe_refuses_a_forbidden_import(tmp_path: Path) -> None:
    # The same probe over a copy of the core with one module that imports redis must fail.
    copy = tmp_path / "rsafe_core"
    shutil.copytree(CORE / "rsafe_core", copy)
    (copy / "leaky.py").write_text("import redis\n", encoding="utf-8")
    result = import_every_core_module(tmp_path)
    assert result.returncode != 0
    assert "rsafe_core must not import redis" in result.stderr
