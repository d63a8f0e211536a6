"""Fixtures of the deployment tests: the pinned tools from scripts/install-deploy-tools.sh, chart rendering,
the resolved compose file. A tool that cannot be installed fails the tests (no silent skips).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .deploy_helpers import (
    CHART,
    INSTALLER,
    ROOT,
    TOOLS,
    TOOLS_BIN,
    Manifest,
    RenderError,
    run_tool,
)


def _tools_present() -> bool:
    return all(os.access(TOOLS_BIN / tool, os.X_OK) for tool in TOOLS)


@pytest.fixture(scope="session")
def tools_bin() -> Path:
    """The folder of the pinned deployment tools, installed on first use."""
    if not _tools_present():
        result = subprocess.run(
            ["bash", str(INSTALLER)], capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode != 0 or not _tools_present():
            pytest.fail(
                f"scripts/install-deploy-tools.sh failed (rc={result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
    return TOOLS_BIN


@pytest.fixture(scope="session")
def render(tools_bin: Path) -> Callable[..., list[Manifest]]:
    """`render(values_file=None, set_values=(), values=None)`: `helm template` output as objects.

    Raises RenderError when helm refuses the values (schema or template checks).
    """
    cache: dict[tuple[Any, ...], list[Manifest]] = {}

    def _render(
        values_file: Path | None = None,
        set_values: tuple[str, ...] = (),
        *,
        values: dict[str, Any] | None = None,
    ) -> list[Manifest]:
        key = (values_file, set_values, json.dumps(values, sort_keys=True))
        if key not in cache:
            args = ["template", "rsafe", str(CHART), "--namespace", "rsafe"]
            if values_file is not None:
                args += ["--values", str(values_file)]
            for item in set_values:
                args += ["--set", item]
            if values is not None:
                args += ["--values", "-"]
            result = run_tool(
                tools_bin, "helm", *args, input=json.dumps(values) if values is not None else None
            )
            if result.returncode != 0:
                raise RenderError(result.stderr)
            cache[key] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def gpu_recipe_args() -> list[str]:
    """`rsafe_gateway.serving_recipe.vllm_args("gpu")`, installing the package editable if needed."""
    try:
        from rsafe_gateway.serving_recipe import vllm_args
    except ImportError:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "-e", str(ROOT), "--no-deps"], check=True
        )
        import importlib

        importlib.invalidate_caches()
        from rsafe_gateway.serving_recipe import vllm_args
    return vllm_args("gpu")


@pytest.fixture(scope="session")
def compose_config(tools_bin: Path) -> dict[str, Any]:
    """docker-compose.yml as the real docker-compose binary resolves it (defaults interpolated, no .env)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RSAFE_", "COMPOSE_", "GRAFANA_"))
    }
    result = run_tool(
        tools_bin,
        "docker-compose",
        "--env-file",
        os.devnull,
        "-f",
        str(ROOT / "docker-compose.yml"),
        "config",
        "--format",
        "json",
        cwd=ROOT,
        env=env,
    )
    if result.returncode != 0:
        pytest.fail(f"docker-compose config failed:\n{result.stderr}")
    config: dict[str, Any] = json.loads(result.stdout)
    return config
