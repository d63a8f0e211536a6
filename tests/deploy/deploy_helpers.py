"""Helpers shared by the deployment tests (a uniquely named module, so no `conftest` import ambiguity)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "rsafe-gateway"
TOOLS_BIN = ROOT / ".cache" / "tools" / "bin"
INSTALLER = ROOT / "scripts" / "install-deploy-tools.sh"
EXAMPLES = sorted((CHART / "examples").glob("*.yaml"))
TOOLS = ("helm", "hadolint", "docker-compose", "kubernetes-validate", "promtool")

Manifest = dict[str, Any]


class RenderError(Exception):
    """`helm template` refused the values."""


def run_tool(
    tools_bin: Path, tool: str, *args: str, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run one of the pinned tools; the caller checks returncode."""
    return subprocess.run(
        [str(tools_bin / tool), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


def find(manifests: list[Manifest], kind: str, name_suffix: str = "") -> list[Manifest]:
    """Objects of a kind, optionally with a name ending in `name_suffix`."""
    return [
        m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
    ]


def one(manifests: list[Manifest], kind: str, component: str) -> Manifest:
    """The single object of a kind for one component (app.kubernetes.io/component label)."""
    matches = [
        m
        for m in manifests
        if m["kind"] == kind
        and m["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(matches) == 1, f"expected one {kind} for {component}, got {len(matches)}"
    return matches[0]
