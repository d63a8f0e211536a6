"""docker-compose.cpu.yml: the stack without a GPU, serving the default guard with the `cpu` recipe.

Checked twice: the override file as written (its vLLM flags are the recipe, verbatim) and the merge
with docker-compose.yml as the pinned docker-compose binary resolves it (no GPU reservation left,
the default guard's folder mounted read-only).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .deploy_helpers import ROOT, run_tool

OVERRIDE = ROOT / "docker-compose.cpu.yml"
VLLM_PREFIX = ["--host", "0.0.0.0", "--port", "8000"]
DEFAULT_GUARD = "rsafe-smollm2"


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader that reads Compose's `!reset` / `!override` tags (as their plain values)."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


_ComposeLoader.add_constructor("!reset", _tagged)
_ComposeLoader.add_constructor("!override", _tagged)


def _cpu_recipe() -> list[str]:
    from rsafe_gateway.serving_recipe import vllm_args

    return vllm_args("cpu")


def _seconds(duration: str) -> float:
    """A Go duration as docker-compose prints it (`30m0s`, `1h0m0s`, `20s`) in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?", duration)
    assert parts and duration, duration
    hours, minutes, seconds = (float(part) if part else 0.0 for part in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def _config(tools_bin: Path, *files: Path) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RSAFE_", "COMPOSE_", "GRAFANA_", "VLLM_"))
    }
    args = ["--env-file", os.devnull]
    for path in files:
        args += ["-f", str(path)]
    result = run_tool(
        tools_bin, "docker-compose", *args, "config", "--format", "json", cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.fixture(scope="module")
def cpu_config(tools_bin: Path) -> dict[str, Any]:
    """docker-compose.yml + docker-compose.cpu.yml, merged by docker-compose (defaults, no .env)."""
    return _config(tools_bin, ROOT / "docker-compose.yml", OVERRIDE)


def test_override_file_carries_the_cpu_recipe_verbatim() -> None:
    override = yaml.load(OVERRIDE.read_text(encoding="utf-8"), Loader=_ComposeLoader)
    command = override["services"]["vllm"]["command"]
    assert command[0] == "/models/${RSAFE_VLLM_MODEL:-rsafe-smollm2}"
    assert command[1:5] == VLLM_PREFIX
    assert command[5:] == _cpu_recipe()
    # It only swaps the model server: the gateway keeps serving the model named `rsafe`.
    assert set(override["services"]) == {"vllm"}
    assert _cpu_recipe()[_cpu_recipe().index("--served-model-name") + 1] == "rsafe"


def test_merged_vllm_serves_the_default_guard_with_the_cpu_recipe(
    cpu_config: dict[str, Any],
) -> None:
    vllm = cpu_config["services"]["vllm"]
    assert vllm["command"] == [f"/models/{DEFAULT_GUARD}", *VLLM_PREFIX, *_cpu_recipe()]
    assert "--gpu-memory-utilization" not in vllm["command"]
    image, _, tag = vllm["image"].rpartition(":")
    assert image == "vllm/vllm-openai-cpu"
    assert re.fullmatch(r"v0\.\d+\.\d+-(x86_64|arm64)", tag), tag
    assert vllm["environment"]["HF_HUB_OFFLINE"] == "1"


def test_merged_stack_reserves_no_gpu(cpu_config: dict[str, Any]) -> None:
    for name, service in cpu_config["services"].items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        assert not devices.get("devices"), f"{name} still reserves a device"
        assert "gpus" not in service, name
        assert service.get("runtime") != "nvidia", name


def test_merged_vllm_mounts_the_default_guard_read_only(cpu_config: dict[str, Any]) -> None:
    vllm = cpu_config["services"]["vllm"]
    (models,) = [v for v in vllm["volumes"] if v["target"] == "/models"]
    assert models["type"] == "bind" and models["read_only"] is True
    assert Path(models["source"]) == ROOT / ".cache"
    # The folder scripts/setup.sh builds, .cache/rsafe-smollm2, is what vLLM serves.
    assert vllm["command"][0] == f"{models['target']}/{DEFAULT_GUARD}"


def test_merged_vllm_health_window_is_shorter_than_the_gpu_one(
    cpu_config: dict[str, Any], compose_config: dict[str, Any]
) -> None:
    cpu_check = cpu_config["services"]["vllm"]["healthcheck"]
    gpu_check = compose_config["services"]["vllm"]["healthcheck"]
    assert _seconds(cpu_check["start_period"]) < _seconds(gpu_check["start_period"])
    assert _seconds(cpu_check["start_period"]) <= 15 * 60
    assert cpu_check["test"] == gpu_check["test"]


def test_merged_stack_keeps_everything_else(
    cpu_config: dict[str, Any], compose_config: dict[str, Any]
) -> None:
    assert set(cpu_config["services"]) == set(compose_config["services"])
    for name in cpu_config["services"].keys() - {"vllm"}:
        assert cpu_config["services"][name] == compose_config["services"][name], name
    for port in cpu_config["services"]["vllm"]["ports"]:
        assert port["host_ip"] == "127.0.0.1"
