"""The per-family Helm values files and compose overrides, rendered by the pinned helm and
docker-compose: each serves its family with exactly its `gpu-<family>` recipe."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from .deploy_helpers import CHART, ROOT, one, run_tool

FAMILIES = ("gpt-oss-safeguard", "qwen3guard")
VLLM_PREFIX = ["--host", "0.0.0.0", "--port", "8000"]


def _recipe(family: str) -> list[str]:
    from rsafe_gateway.serving_recipe import vllm_args

    return vllm_args(f"gpu-{family}")


@pytest.mark.parametrize("family", FAMILIES)
def test_helm_values_serve_the_family(render: Any, family: str) -> None:
    manifests = render(CHART / f"values-{family}.yaml")
    vllm = one(manifests, "Deployment", "vllm")["spec"]["template"]["spec"]["containers"][0]
    model, *rest = vllm["args"]
    assert model.startswith("/models/")
    assert rest == [*VLLM_PREFIX, *_recipe(family)]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    config = one(manifests, "ConfigMap", "gateway")["data"]
    assert config["RSAFE_MODEL_FAMILY"] == family and config["RSAFE_MODEL_NAME"] == family


@pytest.mark.parametrize("family", FAMILIES)
def test_compose_override_serves_the_family(tools_bin: Path, family: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RSAFE_", "COMPOSE_"))}
    result = run_tool(
        tools_bin, "docker-compose", "--env-file", os.devnull,
        "-f", str(ROOT / "docker-compose.yml"), "-f", str(ROOT / f"docker-compose.{family}.yml"),
        "config", "--format", "json", cwd=ROOT, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services: dict[str, Any] = json.loads(result.stdout)["services"]
    command = services["vllm"]["command"]
    assert command[1:] == [*VLLM_PREFIX, *_recipe(family)]
    assert services["gateway"]["environment"]["RSAFE_MODEL_FAMILY"] == family
    assert services["gateway"]["environment"]["RSAFE_MODEL_NAME"] == family
