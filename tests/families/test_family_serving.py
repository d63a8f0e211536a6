"""The per-family serving files say what models/serving.yaml says, and hold valid settings.

Checked without helm or docker (the deploy tests render the chart itself): the vLLM flags of the
Helm values files and compose overrides are exactly the `gpu-<family>` recipe, and their gateway
settings are accepted by `Settings`, for the family they name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO
from rsafe_gateway.serving_recipe import load_profile, vllm_args
from rsafe_gateway.settings import Settings

FAMILIES = ("gpt-oss-safeguard", "qwen3guard")
CHART = REPO / "helm" / "rsafe-gateway"
PREFIX = ["--host", "0.0.0.0", "--port", "8000"]


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_a_gpu_and_a_cpu_profile(family: str) -> None:
    for profile in (f"gpu-{family}", f"cpu-{family}"):
        flags = load_profile(profile)
        assert flags["served-model-name"] == family and flags["enable-prefix-caching"] is True
        assert "max-model-len" in flags
        assert (flags.get("reasoning-parser") == "openai_gptoss") is (family == "gpt-oss-safeguard")


@pytest.mark.parametrize("family", FAMILIES)
def test_helm_values_carry_the_recipe_and_valid_settings(family: str) -> None:
    values = load(CHART / f"values-{family}.yaml")
    assert values["vllm"]["args"] == vllm_args(f"gpu-{family}")
    assert all(isinstance(value, str) for value in values["gateway"]["settings"].values())
    settings = Settings(
        _env_file=None,
        **{k.removeprefix("RSAFE_").lower(): v for k, v in values["gateway"]["settings"].items()},
    )
    assert settings.model_family == family and settings.model_name == family
    assert values["vllm"]["resources"]["limits"]["nvidia.com/gpu"] == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_compose_overrides_carry_the_recipe_and_valid_settings(family: str) -> None:
    override = load(REPO / f"docker-compose.{family}.yml")
    command = override["services"]["vllm"]["command"]
    assert command[1:5] == PREFIX
    assert command[5:] == vllm_args(f"gpu-{family}")
    environment = override["services"]["gateway"]["environment"]
    settings = Settings(
        _env_file=None,
        **{k.removeprefix("RSAFE_").lower(): v for k, v in environment.items()},
    )
    assert settings.model_family == family and settings.model_name == family
