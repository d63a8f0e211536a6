"""Render the vLLM command-line flags of a serving profile from `models/serving.yaml`.

Kept in the package so the local run, the image build and the tests read one recipe.
Usage: `python -m rsafe_gateway.serving_recipe --profile cpu` prints one flag per line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

RECIPE_PATH = Path(__file__).resolve().parents[2] / "models" / "serving.yaml"


def load_profile(profile: str, recipe_path: Path = RECIPE_PATH) -> dict[str, Any]:
    """The flag mapping of one profile, e.g. `{"dtype": "bfloat16", ...}`."""
    document = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    profiles: dict[str, dict[str, Any]] = document["profiles"]
    if profile not in profiles:
        raise KeyError(f"unknown serving profile {profile!r}; known: {sorted(profiles)}")
    return dict(profiles[profile])


def vllm_args(profile: str, recipe_path: Path = RECIPE_PATH) -> list[str]:
    """vLLM CLI flags for a profile: `true` becomes a bare flag, `false` is left out."""
    args: list[str] = []
    for name, value in load_profile(profile, recipe_path).items():
        if value is True:
            args.append(f"--{name}")
        elif value is False or value is None:
            continue
        else:
            args.extend([f"--{name}", str(value)])
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="gpu")
    options = parser.parse_args(argv)
    sys.stdout.write("\n".join(vllm_args(options.profile)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
